"""Numba's cache of the kernels is emptied when any kernel module changed since it was written: a
kernel compiling in another file's functions would otherwise load stale object code."""

from __future__ import annotations

from pathlib import Path

from conv_analytics.categorize import kernels
from conv_analytics.categorize.kernels import STAMP, clear_stale_cache


def _cache_files(cache: Path, *names: str) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        (cache / name).write_bytes(b"compiled")


def test_a_change_to_any_module_empties_the_cache_once(tmp_path: Path) -> None:
    sources, cache = tmp_path / "kernels", tmp_path / "kernels" / "__pycache__"
    sources.mkdir()
    (sources / "rules.py").write_text("SHIFT = 29\n")
    (sources / "caller.py").write_text("from .rules import SHIFT\n")
    _cache_files(cache, "caller.kernel-3.py311.nbi", "caller.kernel-3.py311.1.nbc", "caller.cpython-311.pyc")

    assert clear_stale_cache(sources, cache)  # no record yet: what is there may be of any version
    assert sorted(p.name for p in cache.iterdir()) == ["caller.cpython-311.pyc", STAMP]

    _cache_files(cache, "caller.kernel-3.py311.nbi", "caller.kernel-3.py311.1.nbc")
    assert not clear_stale_cache(sources, cache)  # the same sources: the cache stays
    assert (cache / "caller.kernel-3.py311.1.nbc").is_file()

    (sources / "rules.py").write_text("SHIFT = 31\n")  # the caller's own file is unchanged
    assert clear_stale_cache(sources, cache)
    assert not list(cache.glob("*.nb[ic]"))
    assert not clear_stale_cache(sources, cache)


def test_a_missing_cache_folder_is_made_with_its_record(tmp_path: Path) -> None:
    sources = tmp_path / "kernels"
    sources.mkdir()
    (sources / "rules.py").write_text("SHIFT = 29\n")
    assert not clear_stale_cache(sources, tmp_path / "cache")
    assert (tmp_path / "cache" / STAMP).read_text(encoding="ascii")


def test_importing_the_kernels_records_their_sources_beside_numbas_cache(tmp_path: Path) -> None:
    copy = tmp_path / "kernels"
    copy.mkdir()
    for path in Path(kernels.__file__).parent.glob("*.py"):
        (copy / path.name).write_bytes(path.read_bytes())
    clear_stale_cache(copy, tmp_path / "cache")  # the record of the same sources
    recorded = (tmp_path / "cache" / STAMP).read_text(encoding="ascii")
    assert (kernels.cache_folder() / STAMP).read_text(encoding="ascii") == recorded
