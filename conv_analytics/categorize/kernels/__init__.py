"""Numba kernels for categorisation and topic discovery: CPU ones (`*_cpu`) and CUDA ones (`*_cuda`).

Numba checks a kernel's on-disk cache against the kernel's own file only, yet kernels here compile in
functions and constants of other files of this package (topics_cpu those of hashing_cpu and
train_cpu, sentiment_cuda's score_one the rules of sentiment_cpu). After a change to one of those
alone, as a `git pull` can bring, they would load stale object code and silently compute what the
code no longer says. So importing the package first empties its cache folder when the package's
sources are not those the cache was written for (a hash of them is kept beside the cache).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core.caching import FunctionCache

STAMP = "sources.sha256"


def clear_stale_cache(sources: Path, cache: Path) -> bool:
    """Delete the Numba cache files in `cache` unless they were written for the modules of `sources`
    as they are now, and record those; True when files were deleted."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    stamp = cache / STAMP
    try:
        if stamp.read_text(encoding="ascii") == digest.hexdigest():
            return False
    except OSError:
        pass  # no cache written yet, or none readable
    try:
        stale = [*cache.glob("*.nbi"), *cache.glob("*.nbc")]
        for path in stale:
            path.unlink(missing_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest.hexdigest(), encoding="ascii")
    except OSError:
        return False  # a folder Numba cannot write its cache to either
    return bool(stale)


def _here() -> None:
    """Defined in this folder, so Numba gives it the cache folder of the kernels beside it."""


def cache_folder() -> Path:
    """Where Numba keeps these kernels' compiled code (NUMBA_CACHE_DIR, else beside them)."""
    return Path(FunctionCache(_here).cache_path)


clear_stale_cache(Path(__file__).parent, cache_folder())
