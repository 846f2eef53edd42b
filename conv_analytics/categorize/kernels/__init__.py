"""Numba kernels for categorisation and topic discovery: CPU ones (`*_cpu`) and CUDA ones (`*_cuda`).

Numba checks a kernel's on-disk cache against the kernel's own file only, yet kernels here compile in
functions and constants of other files of this package (topics_cpu those of hashing_cpu and
train_cpu, sentiment_cuda's score_one the rules of sentiment_cpu). After a change to one of those
alone, as a `git pull` can bring, they would load stale object code and silently compute what the
code no longer says. So importing the package first empties its cache folder when the package's
sources are not those the cache was written for (a hash of them is kept beside the cache).

Numba keeps its cache only where it can write a file: it passes over the folder set (NUMBA_CACHE_DIR,
else the one beside the kernels) when it cannot, tries the user's home, and fails the import when it
finds no writable folder. In a container the temporary folder is often the only writable one: a
read-only root filesystem, or another user than the image's (OpenShift runs images under arbitrary
user ids). There the folder set, with the kernels compiled into the image, is copied into a private
folder of the temporary one, so they load rather than compile again (about 40 s).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from numba.core import config
from numba.core.caching import FunctionCache, UserProvidedCacheLocator

from conv_analytics.errors import PlatformError

STAMP = "sources.sha256"


def _stamp(folder: Path) -> str | None:
    """The sources hash recorded in a cache folder; None where none was written or it is unreadable."""
    try:
        return (folder / STAMP).read_text(encoding="ascii")
    except OSError:
        return None


def clear_stale_cache(sources: Path, cache: Path) -> bool:
    """Delete the Numba cache files in `cache` unless they were written for the modules of `sources`
    as they are now, and record those; True when files were deleted."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    if _stamp(cache) == digest.hexdigest():
        return False
    try:
        stale = [*cache.glob("*.nbi"), *cache.glob("*.nbc")]
        for path in stale:
            path.unlink(missing_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        (cache / STAMP).write_text(digest.hexdigest(), encoding="ascii")
    except OSError:
        return False  # a folder Numba cannot write its cache to either
    return bool(stale)


def _here() -> None:
    """Defined in this folder, so Numba gives it the cache folder of the kernels beside it."""


def cache_folder() -> Path:
    """Where Numba keeps these kernels' compiled code (NUMBA_CACHE_DIR, else beside them)."""
    return Path(FunctionCache(_here).cache_path)


def writable(folder: Path) -> bool:
    """What Numba asks of a cache folder: it exists or can be made, and takes a new file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def configured_folder() -> Path:
    """The cache folder these kernels are set to use: under NUMBA_CACHE_DIR, else beside them."""
    if config.CACHE_DIR:
        return Path(config.CACHE_DIR) / UserProvidedCacheLocator.get_suitable_cache_subpath(__file__)
    return Path(__file__).parent / "__pycache__"


def use_writable_cache() -> Path:
    """The configured cache folder where Numba can write to it. Else, when it holds compiled kernels or
    Numba finds no other folder, a copy of it in a folder of the temporary one, which NUMBA_CACHE_DIR then
    names for Numba here and for child processes."""
    folder = configured_folder()
    if writable(folder):
        return folder
    prepared = _stamp(folder)
    if prepared is None:  # nothing compiled there: Numba's own choice, where it finds one
        try:
            return cache_folder()
        except RuntimeError:
            pass
    config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"] = str(_private_folder(folder))
    copy = cache_folder()  # made by Numba, empty the first time
    if prepared is not None and prepared != _stamp(copy):
        _copy_over(folder, copy)
    return copy


def _private_folder(folder: Path) -> Path:
    """This user's folder for kernel caches in the temporary folder: one that only this user can
    write to, as compiled code is loaded from it (else a new one of a random name)."""
    try:
        shared = Path(tempfile.gettempdir())
    except FileNotFoundError:
        raise PlatformError(
            f"Numba cannot write its kernel cache to {folder}, and there is no writable temporary folder: "
            "set NUMBA_CACHE_DIR to a writable folder (in Kubernetes, an emptyDir volume)"
        ) from None
    mine = shared / f"conv-analytics-kernels-{os.getuid()}"
    try:
        mine.mkdir(mode=0o700, exist_ok=True)
        info = mine.lstat()
    except OSError:
        info = None
    if info is None or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return Path(tempfile.mkdtemp(prefix="conv-analytics-kernels-"))
    return mine


def _copy_over(source: Path, target: Path) -> None:
    """Replace `target` by a copy of `source`, whole or not at all: copied beside it, then renamed. A
    process that another one beats to it keeps the other's copy."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


clear_stale_cache(Path(__file__).parent, use_writable_cache())
