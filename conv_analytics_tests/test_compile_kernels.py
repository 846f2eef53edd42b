"""`conv-analytics compile-kernels` leaves no kernel for a run to compile: after it, a demo of another size
and other days (small runs for the serial kernels, the weekly fits) adds no variant to Numba's cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conv_analytics.cli.kernels import cached_kernels, isolated_environment


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "conv_analytics.cli", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_run_after_compile_kernels_compiles_nothing(tmp_path: Path) -> None:
    # a cache of its own: empty to start with, and no other test compiles into it meanwhile
    env = {**isolated_environment(str(tmp_path / "home")), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    said = cli("compile-kernels", env=env)
    [folder] = {path.parent for path in (tmp_path / "numba").rglob("*.nbc")}
    compiled = cached_kernels(folder)
    assert re.match(rf"{len(compiled)} kernel variants compiled in ", said), said
    assert {"hashing_cpu._score_serial", "hashing_cpu._score_parallel", "sentiment_cpu.rewrite_texts"} <= {
        name.split("-")[0] for name in compiled
    }
    cli("demo", "--days", "9", "--per-day", "25", "--end-date", "2026-06-30", env=env)
    assert cached_kernels(folder) == compiled


def test_the_compiling_demo_ignores_the_stores_and_sources_in_force_but_not_the_device(monkeypatch) -> None:
    monkeypatch.setenv("CONV_ANALYTICS_LAKE_URL", "s3://analytics/lake")
    monkeypatch.setenv("MONGODB_URI", "mongodb://db.example:27017")
    monkeypatch.setenv("NOCODB_URL", "http://nocodb.example")
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://s3.example")
    monkeypatch.setenv("DAGSTER_HOME", "/srv/dagster")
    monkeypatch.setenv("CONV_ANALYTICS_DEVICE", "cpu")
    env = isolated_environment("/tmp/compile-home")
    platform = {name: value for name, value in env.items() if name.startswith(("CONV_ANALYTICS_", "DAGSTER_"))}
    assert platform == {"CONV_ANALYTICS_DEVICE": "cpu", "CONV_ANALYTICS_HOME": "/tmp/compile-home"}
    assert not {"MONGODB_URI", "NOCODB_URL", "S3_ENDPOINT_URL"} & set(env)
    assert env["PATH"] == os.environ["PATH"]


def test_a_failing_demo_ends_compile_kernels_with_its_one_line(tmp_path: Path) -> None:
    env = {**isolated_environment(str(tmp_path / "home")), "CONV_ANALYTICS_DEVICE": "tpu"}
    done = subprocess.run(
        [sys.executable, "-m", "conv_analytics.cli", "compile-kernels"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: the demo run that compiles the kernels failed: "
        "CONV_ANALYTICS_DEVICE='tpu' is not valid: expected auto, cpu or cuda"
    )
