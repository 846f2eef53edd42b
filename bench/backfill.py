"""Wall time of a 28-day backfill of the daily chain on 1, 2 and 4 Celery workers, against the in-process runner.

The production shape runs with real processes on this machine (conv_analytics_tests/deploy_support.py:
Postgres storage, `dagster code-server start`, the webserver, the daemon, `conv-analytics celery-worker`
processes). Each measurement launches a backfill of the daily chain through GraphQL, as the UI does, and
times it from launch to COMPLETED_SUCCESS. The reference, measured in the same run over the same days of
the same demo data, is the CLI's in-process run (`materialize_range`, one run over the range). Each
worker count gets a range of its own (disjoint 28-day windows of one demo data set) so every backfill
does the same amount of work from scratch; the workers of the previous count stay up, new ones join.
The last window has no data: its backfill's time per partition is the overhead Dagster adds per
partition (queue, run worker, steps on Celery, event log in Postgres) with nothing to compute.

Needs Postgres and Redis (`eval "$(scripts/servers env postgres redis)"`).

    .venv/bin/python bench/backfill.py [--days 28] [--per-day 10] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST = date(2026, 1, 5)  # a Monday; every window starts on a Monday too (28 days = 4 weeks)


def _in_process(settings: dict[str, str], home: Path, keys: list[str]) -> float:
    from conv_analytics.config import Config
    from conv_analytics.definitions import Platform
    from conv_analytics.runner import materialize_range

    config = Config({**settings, Config.home.env: str(home), Config.executor.env: "in_process"})
    started = time.perf_counter()
    materialize_range(config, Platform.build(config).graph.daily_chain, keys, log_level="WARNING")
    return time.perf_counter() - started


def _backfill(shape: object, chain: list, keys: list[str]) -> float:
    from conv_analytics_tests.deploy_support import wait_for

    started = time.perf_counter()
    backfill_id = shape.launch_backfill(chain, keys, {})  # type: ignore[attr-defined]
    status = wait_for(
        f"backfill {backfill_id}",
        lambda: (s := shape.backfill_status(backfill_id)) not in ("REQUESTED", "CANCELING", "FAILING") and s,  # type: ignore[attr-defined]
        3600,
        every=1,
    )
    if status != "COMPLETED_SUCCESS":
        raise RuntimeError(f"backfill {backfill_id} ended {status} (logs: {shape.logs})")  # type: ignore[attr-defined]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--per-day", type=int, default=10, help="demo conversations on a weekday")
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    from conv_analytics.config import Config
    from conv_analytics.definitions import Platform
    from conv_analytics.sources.demo import write_demo
    from conv_analytics_tests.deploy_support import PG_SETTINGS, Shape

    missing = [n for n in (*PG_SETTINGS, "CONV_ANALYTICS_CELERY_BROKER_URL") if not os.environ.get(n)]
    if missing:
        sys.exit(f'set {", ".join(missing)}: eval "$(scripts/servers env postgres redis)"')
    windows = [
        [(FIRST + timedelta(days=w * args.days + d)).isoformat() for d in range(args.days)]
        for w in range(len(counts) + 1)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder:
        root = Path(folder)
        source = root / "source"
        data_days = len(counts) * args.days  # the last window stays empty
        demo = write_demo(source, FIRST + timedelta(days=data_days - 1), data_days, per_day=args.per_day)
        print(f"demo data: {demo.conversations} conversations, {demo.messages} messages over {data_days} days")
        settings = {
            **{n: os.environ[n] for n in (*PG_SETTINGS, "CONV_ANALYTICS_CELERY_BROKER_URL")},
            "CONV_ANALYTICS_CELERY_BACKEND_URL": os.environ.get("CONV_ANALYTICS_CELERY_BACKEND_URL", ""),
            Config.home.env: str(root / "deployed"),
            Config.start_date.env: FIRST.isoformat(),
            Config.source_dir.env: str(source),
            Config.translator.env: "none",
        }
        settings = {k: v for k, v in settings.items() if v}
        # the empty window first: it also pays the process's one-off imports and compilations
        empty_reference = _in_process(settings, root / "reference", windows[-1])
        reference = [_in_process(settings, root / "reference", keys) for keys in windows[:-1]] + [empty_reference]
        shape = Shape(root / "shape", settings)
        rows = []
        try:
            shape.start_code_server()
            shape.wait_code_server()
            shape.start_webserver()
            shape.wait_webserver()
            shape.start_daemon()
            chain = Platform.build(Config(shape.env)).graph.daily_chain
            started: list[str] = []
            for count, keys in zip(counts, windows, strict=False):
                while len(started) < count:
                    started.append(f"bench-{len(started) + 1}")
                    shape.start_worker(started[-1])
                shape.wait_workers(started)
                rows.append((count, _backfill(shape, chain, keys)))
            empty = _backfill(shape, chain, windows[-1])
        finally:
            shape.stop()
    print(f"\n28-day backfill of the daily chain ({args.days} partitions, {args.per_day} conversations a weekday)")
    print(f"{'runner':<24} {'wall s':>8} {'in-process s':>13} {'ratio':>7}")
    for (count, seconds), base in zip(rows, reference, strict=False):
        print(f"{f'celery, {count} worker(s)':<24} {seconds:>8.1f} {base:>13.1f} {seconds / base:>7.2f}")
    print(f"\nempty days ({args.days} partitions, no data), workers: {started[-1].split('-')[-1]}")
    print(f"  celery backfill {empty:.1f} s = {empty / args.days:.2f} s per partition")
    print(f"  in process      {reference[-1]:.1f} s = {reference[-1] / args.days:.2f} s per partition")
    print(f"  overhead Dagster adds: {(empty - reference[-1]) / args.days:.2f} s per partition")
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other work)")


if __name__ == "__main__":
    main()
