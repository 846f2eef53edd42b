"""`conv-analytics run` end to end over a generated demo corpus: wall time, messages/s and peak memory.

The corpus (days x conversations per weekday of the demo generator, `sources/demo.py`) is written once
as files-source exports into a cache folder outside the repository and reused by later runs with the
same size. Each measurement then runs `conv-analytics run` over its days in a child process with a
fresh home (lake, Dagster instance, translation cache), so nothing is carried over between runs.
`conv-analytics compile-kernels` runs first, so that no run includes compiling Numba's kernels, as the
first one on a machine would (its time is printed apart).

Printed per step (a Dagster op: `ingest_messages`, `enriched_messages`, ..., summed over the runs of
the plan) and for the whole run: seconds, messages/s (the corpus's messages over those seconds) and
peak resident memory. Step times are the runner's step events (the CLI prints one line per finished
step); the memory of a step is the highest RSS of the `conv-analytics` process sampled from /proc
while it ran; the whole run's peak is the kernel's high-water mark of that process (`wait4`; the
short-lived `apertium` translation processes it starts are not added). Cores: the process's CPU time
over the wall time, for a step from the line before its own (so the set-up of its run counts with it):
where it is well under 2, a core sits idle. In the same run, the reference: DuckDB alone reading every
source JSON line into Arrow batches (the floor for parsing).

    .venv/bin/python bench/end_to_end.py --days 90 --per-day 6900        # about 3.2M messages
    .venv/bin/python bench/end_to_end.py --days 30 90 180 --per-day 1000  # is peak memory flat?
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from conv_analytics.config import Config
from conv_analytics.sources.demo import write_demo

REPO = Path(__file__).resolve().parents[1]
LAST_DAY = date(2026, 11, 20)
CHUNK_DAYS = 10  # days generated at once: the generator holds a chunk's lines in memory
STEP_LINE = re.compile(r"^\[\d+/\d+\] (?P<stage>.+): (?P<step>\S+) (?P<state>done|FAILED) in (?P<seconds>[\d.]+)s$")
SAMPLE_SECONDS = 0.05


@dataclass
class StepFigures:
    seconds: float = 0.0
    runs: int = 0
    peak_rss: int = 0  # bytes
    cpu: float = 0.0  # CPU seconds of the process, from the line before the step's to its own
    span: float = 0.0  # wall seconds over the same stretch


@dataclass
class RunFigures:
    wall: float
    peak_rss: int
    cpu: float
    steps: dict[str, StepFigures] = field(default_factory=dict)


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conv-analytics-bench"


def corpus(cache: Path, days: int, per_day: int, seed: int) -> tuple[Path, dict[str, int]]:
    """The exports of `days` demo days ending on LAST_DAY, generated on first use and kept in `cache`.

    Generated CHUNK_DAYS at a time, each chunk's files appended to the folder's: a day's file then
    holds the same lines in the same order as `write_demo` over the whole range writes (records only
    spill into the next day, whose own records come after them).
    """
    folder = cache / f"demo-{LAST_DAY}-{days}d-{per_day}pd-seed{seed}"
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        return folder / "source", json.loads(summary_path.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    source = folder / "source"
    source.mkdir(parents=True)
    totals = {"conversations": 0, "messages": 0, "malformed": 0}
    first = LAST_DAY - timedelta(days=days - 1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        for offset in range(0, days, CHUNK_DAYS):
            chunk = min(CHUNK_DAYS, days - offset)
            chunk_last = first + timedelta(days=offset + chunk - 1)
            generated = write_demo(Path(scratch), chunk_last, chunk, per_day=per_day, seed=seed)
            for part in sorted(Path(scratch).iterdir()):
                with (source / part.name).open("ab") as target, part.open("rb") as lines:
                    shutil.copyfileobj(lines, target)
                part.unlink()
            for name in totals:
                totals[name] += getattr(generated, name)
    summary_path.write_text(json.dumps(totals))
    print(f"generated {totals} in {time.perf_counter() - started:.1f}s into {source}")
    return source, totals


def duckdb_floor(source: Path) -> tuple[float, int]:
    """Seconds for DuckDB to parse every message and conversation line into Arrow batches, and the rows."""
    import duckdb

    con = duckdb.connect()
    rows = 0
    started = time.perf_counter()
    for entity in ("messages", "conversations"):
        pattern = str(source / f"{entity}-*.jsonl")
        sql = "SELECT * FROM read_json($pattern, format = 'newline_delimited', ignore_errors = true)"
        reader = con.sql(sql, params={"pattern": pattern}).to_arrow_reader(64 * 1024)
        for batch in reader:
            rows += batch.num_rows
    seconds = time.perf_counter() - started
    con.close()
    return seconds, rows


def _rss(pid: int) -> int:
    """Resident bytes of a process, from /proc (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Samples a process's RSS; `take()` gives the highest since the last call."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            rss = _rss(self.pid)
            with self.lock:
                self.peak = max(self.peak, rss)

    def take(self) -> int:
        with self.lock:
            peak, self.peak = self.peak, _rss(self.pid)
        return peak


def run_cli(cli: Path, source: Path, first: date, last: date, log: Path) -> RunFigures:
    """`conv-analytics run` over [first, last] on a fresh home, with its steps' times and memory."""
    home = Path(tempfile.mkdtemp(prefix="conv-analytics-e2e-"))
    env = {
        **os.environ,
        Config.home.env: str(home),
        Config.source_dir.env: str(source),
    }
    env.pop(Config.dagster_home.env, None)
    command = [str(cli), "run", "--start-date", first.isoformat(), "--end-date", last.isoformat()]
    steps: dict[str, StepFigures] = {}
    started = time.perf_counter()
    try:
        with log.open("w") as output:
            child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=output, text=True, bufsize=1)
            sampler = Sampler(child.pid)
            sampler.start()
            mark = (time.perf_counter(), 0.0)
            assert child.stdout is not None
            for line in child.stdout:
                output.write(line)
                match = STEP_LINE.match(line.strip())
                if match:
                    figures = steps.setdefault(match["step"], StepFigures())
                    figures.seconds += float(match["seconds"])
                    figures.runs += 1
                    peak = sampler.take()
                    figures.peak_rss = max(figures.peak_rss, peak)
                    now = (time.perf_counter(), _cpu(child.pid))
                    figures.span += now[0] - mark[0]
                    figures.cpu += now[1] - mark[1]
                    mark = now
                    print(f"  {line.strip()} (peak RSS {mib(peak)})", flush=True)  # long runs show their progress
            # wait4 gives this child's own high-water mark (RUSAGE_CHILDREN would be the max of all so far)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = code = os.waitstatus_to_exitcode(status)
            sampler.stopped.set()
        wall = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"{' '.join(command)} failed with exit code {code}: see {log}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return RunFigures(wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, steps)  # Linux: KiB


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def print_run(label: str, messages: int, figures: RunFigures) -> None:
    print(f"\n{label}")
    print(f"  {'step':<34}{'runs':>5}{'seconds':>10}{'messages/s':>14}{'peak RSS':>12}{'cores':>7}")
    for name, step in figures.steps.items():
        rate = messages / step.seconds if step.seconds else 0.0
        cores = step.cpu / step.span if step.span else 0.0
        print(f"  {name:<34}{step.runs:>5}{step.seconds:>10.1f}{rate:>14,.0f}{mib(step.peak_rss):>12}{cores:>7.2f}")
    runs = sum(step.runs for step in figures.steps.values())
    rate, cores = messages / figures.wall, figures.cpu / figures.wall
    print(
        f"  {'whole run (process)':<34}{runs:>5}{figures.wall:>10.1f}{rate:>14,.0f}"
        f"{mib(figures.peak_rss):>12}{cores:>7.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[90], help="one measurement per range length")
    parser.add_argument("--per-day", type=int, default=6900, help="conversations on an ordinary weekday")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=default_cache(), help="where corpora are kept")
    parser.add_argument("--cli", type=Path, default=REPO / ".venv" / "bin" / "conv-analytics")
    args = parser.parse_args()
    if args.cache.resolve().is_relative_to(REPO):
        parser.error("--cache must be outside the repository")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    # the first run on a machine would otherwise include compiling the kernels; said, not counted
    compiled = subprocess.run([str(args.cli), "compile-kernels"], capture_output=True, text=True, check=True)
    print(f"compile-kernels, before the runs and not counted: {compiled.stdout.strip()}")
    results = []
    for days in args.days:
        source, totals = corpus(args.cache, days, args.per_day, args.seed)
        first = LAST_DAY - timedelta(days=days - 1)
        floor_seconds, floor_rows = duckdb_floor(source)
        # the demo's last evening runs past midnight: the day after holds its last messages (as `demo` does)
        last = LAST_DAY + timedelta(days=1)
        log = args.cache / f"run-{days}d-{args.per_day}pd.log"
        figures = run_cli(args.cli, source, first, last, log)
        messages = totals["messages"]
        print_run(
            f"{days} days x {args.per_day} conversations/weekday: {totals['conversations']:,} conversations, "
            f"{messages:,} messages ({first}..{last}; log {log})",
            messages,
            figures,
        )
        print(
            f"  {'reference: DuckDB reads the JSON':<34}{'':>5}{floor_seconds:>10.1f}"
            f"{messages / floor_seconds:>14,.0f}   ({floor_rows:,} rows)"
        )
        print(f"  whole run / DuckDB read: {figures.wall / floor_seconds:.1f}x")
        results.append((days, figures.peak_rss))
    if len(results) > 1:
        low, high = min(p for _, p in results), max(p for _, p in results)
        print("\npeak RSS by range: " + ", ".join(f"{d} days {mib(p)}" for d, p in results))
        print(f"largest / smallest: {high / low:.2f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
