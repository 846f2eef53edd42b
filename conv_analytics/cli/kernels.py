"""`conv-analytics compile-kernels`: Numba's kernel cache filled before the first run needs it.

A kernel the cache lacks is compiled by the first process that runs it: on a fresh machine the first
run waits about 40 s for all of them, and so does every run in a fresh container (a Kubernetes run
worker's pod, say) unless the image carries the cache. Compiling them is running them: a small demo
through the whole graph in a child process (its own temporary home, none of the settings in force, so
no store or source is touched), then the categoriser over texts the demo lacks (emoji, other scripts),
as one batch and as many, so that each kernel meets the argument types and the serial and parallel
variants that runs give it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from conv_analytics.config import Config

# Two whole ISO weeks, so the weekly topic and intent fits run besides the daily steps, and enough
# conversations a day that a run's text exceeds what the serial kernels take.
DEMO_DAYS = 15
DEMO_PER_DAY = 60

# What the demo's generator never writes: the sentiment pre-pass rewrites emoji and non-ASCII spaces.
SAMPLE_TEXTS = (
    "Thanks, that fixed it 😊",
    "The app crashed AGAIN 😡😡 and nobody answers!!",
    "¿Dónde está mi pedido? Lo pedí hace dos semanas.",
    "Mein Paket ist nicht angekommen\u00a0📦",
    "ok",
    "配送状況を教えてください",
)
MANY = 4_000  # the sample repeated past the serial kernels' limit (hashing_cpu.PARALLEL_MIN_BYTES)


def cached_kernels(folder: Path) -> set[str]:
    """The compiled variants in a Numba cache folder (one object file each)."""
    return {path.name for path in folder.glob("*.nbc")}


def isolated_environment(home: str) -> dict[str, str]:
    """This environment without the platform's settings (stores, sources, servers) and Dagster's, but
    the device (which kernels run), on `home`: the embedded defaults."""
    settings = {setting.env for setting in Config.settings()}
    kept = {
        name: value
        for name, value in os.environ.items()
        if name == Config.device.env or not (name in settings or name.startswith(("CONV_ANALYTICS_", "DAGSTER_")))
    }
    return {**kept, Config.home.env: home}


@click.command("compile-kernels")
def compile_kernels() -> None:
    """Compile the CPU kernels into Numba's on-disk cache (NUMBA_CACHE_DIR, else beside the package), so
    that runs on this machine, or in a container image built with it, start at full speed. Cached code
    is for this machine's kind of CPU: a run on another kind compiles its own."""
    import pyarrow as pa

    from conv_analytics.categorize import Categorizer
    from conv_analytics.categorize.kernels import cache_folder

    folder = cache_folder()
    before = cached_kernels(folder)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="conv-analytics-kernels-") as home:
        demo = [sys.executable, "-m", "conv_analytics.cli", "demo", "--days", str(DEMO_DAYS)]
        done = subprocess.run(
            [*demo, "--per-day", str(DEMO_PER_DAY)], env=isolated_environment(home), capture_output=True, text=True
        )
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines() or [f"exit code {done.returncode}"]
        # the child's own one-line error, without click's prefix
        raise click.ClickException(
            f"the demo run that compiles the kernels failed: {lines[-1].removeprefix('Error: ')}"
        )
    categorizer = Categorizer.load()
    for texts in (SAMPLE_TEXTS, SAMPLE_TEXTS * (MANY // len(SAMPLE_TEXTS))):
        # as the CLI's `categorize` labels texts, and as the assets do, one task at a time
        for predict in (categorizer.predict, categorizer.predict_topic, categorizer.predict_intent):
            predict(pa.array(texts))
    compiled = cached_kernels(folder) - before
    click.echo(
        f"{len(compiled)} kernel variants compiled in {time.perf_counter() - started:.1f}s; "
        f"{len(cached_kernels(folder))} cached in {folder}"
    )
