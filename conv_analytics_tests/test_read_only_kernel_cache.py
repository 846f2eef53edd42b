"""A kernel cache folder Numba cannot write to (a read-only root filesystem, an image's cache owned by
another user) is copied into a private folder of the temporary one, rather than compiled again or,
where Numba finds no writable folder at all, failing the import.

As root every folder is writable, so these tests say which one is not through `kernels.writable`;
the rest (Numba's locator, the copy, the folder checks) is the real code.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from numba.core import config

from conv_analytics.categorize import kernels
from conv_analytics.categorize.kernels import STAMP
from conv_analytics.errors import PlatformError


@pytest.fixture
def image_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A read-only NUMBA_CACHE_DIR holding compiled kernels, and a temporary folder of this test's own."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "image-cache"))  # restored with the one below
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "image-cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = kernels.configured_folder()
    folder.mkdir(parents=True)
    (folder / STAMP).write_text("sources-1", encoding="ascii")
    (folder / "rules.score-42.py311.nbi").write_bytes(b"index")
    (folder / "rules.score-42.py311.1.nbc").write_bytes(b"code")
    monkeypatch.setattr(kernels, "writable", lambda path: path != folder)
    return folder


def _use_cache(image: Path) -> Path:
    config.CACHE_DIR = str(image.parent)  # as a new process starts: the image's folder is the one set
    return kernels.use_writable_cache()


def test_the_read_only_cache_is_copied_once_into_a_private_folder(image_cache: Path, tmp_path: Path) -> None:
    copy = _use_cache(image_cache)

    mine = tmp_path / "tmp" / f"conv-analytics-kernels-{os.getuid()}"
    assert copy.parent == mine
    assert config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"] == str(mine)  # child processes use it too
    assert kernels.cache_folder() == copy  # where Numba now loads and writes the kernels
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in image_cache.iterdir())
    assert (copy / "rules.score-42.py311.1.nbc").read_bytes() == b"code"
    assert mine.stat().st_mode & 0o077 == 0  # compiled code is loaded from it: nobody else may write there

    (copy / "rules.score-42.py311.2.nbc").write_bytes(b"compiled here")  # a variant Numba added
    assert _use_cache(image_cache) == copy
    assert (copy / "rules.score-42.py311.2.nbc").is_file()  # the same kernels: no copy again

    (image_cache / STAMP).write_text("sources-2", encoding="ascii")  # a new image
    assert _use_cache(image_cache) == copy
    assert (copy / STAMP).read_text(encoding="ascii") == "sources-2"
    assert not (copy / "rules.score-42.py311.2.nbc").exists()
    assert not [p for p in mine.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_temporary_folder_that_others_can_write_to_is_not_used(image_cache: Path, tmp_path: Path) -> None:
    planted = tmp_path / "tmp" / f"conv-analytics-kernels-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)

    copy = _use_cache(image_cache)

    assert copy.parent != planted and copy.parent.parent == tmp_path / "tmp"
    assert copy.parent.name.startswith("conv-analytics-kernels-")
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert (copy / "rules.score-42.py311.1.nbc").is_file()
    assert not list(planted.iterdir())


def test_a_link_in_place_of_the_private_folder_is_not_followed(image_cache: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "tmp" / f"conv-analytics-kernels-{os.getuid()}").symlink_to(elsewhere)

    copy = _use_cache(image_cache)

    assert not list(elsewhere.iterdir())
    assert copy.parent.parent == tmp_path / "tmp" and not copy.parent.is_symlink()


def test_no_writable_folder_at_all_is_one_line_naming_the_setting(
    image_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_temporary_folder() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", no_temporary_folder)
    with pytest.raises(PlatformError, match=r"cannot write its kernel cache to .*set NUMBA_CACHE_DIR"):
        _use_cache(image_cache)


def test_a_writable_cache_folder_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    folder = kernels.use_writable_cache()

    assert folder == kernels.configured_folder() == kernels.cache_folder()
    assert folder.parent == tmp_path / "cache"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "cache")
    assert not (tmp_path / "tmp").exists()
