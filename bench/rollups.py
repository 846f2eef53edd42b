"""How long daily, weekly and monthly rollups take for about a million messages over 90 days.

Synthetic categorised conversations (conv_analytics.analytics.synthetic) are written to a temporary
Parquet lake, one file per day, with 30 days of earlier history for the new-user lookup. Each stage
then runs in a fresh process, as a single-run backfill would: read the window's conversations from
the lake, look up earlier users with DuckDB over raw_conversations, compute the rollups. The
reference, measured in the same process, is the floor any rollup pays: reading the same partitions
and counting conversations per period. Peak memory is the process's maximum resident set size.

    .venv/bin/python bench/rollups.py [--messages 1000000] [--days 90]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

FIRST = date(2024, 1, 1)  # a Monday: 90 days hold 12 whole ISO weeks and 2 whole months
HISTORY_DAYS = 30
REPEAT = 3  # best of three: the machine is shared
ASSETS = {"day": "daily_rollups", "week": "weekly_rollups", "month": "monthly_rollups"}
# the tables make_lake writes that say who was seen when, most complete first (as the rollup assets read them)
HISTORY_TABLES = ("raw_conversations", "conversation_categories")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_lake(root: str, messages: int, days: int) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from conv_analytics.analytics.synthetic import synthetic_categories
    from conv_analytics.io.lake import ParquetLake
    from conv_analytics.schemas import CONVERSATION_CATEGORIES, RAW_CONVERSATIONS

    lake = ParquetLake.open(root)
    per_day = max(1, round(messages / 6.8 / days))  # about 6.8 messages per synthetic conversation
    history_start = FIRST - timedelta(days=HISTORY_DAYS)
    history = synthetic_categories(history_start, HISTORY_DAYS, per_day, 60_000, seed=3, id_prefix="h")
    data = synthetic_categories(FIRST, days, per_day, 60_000, seed=4)
    for table, first, count, with_categories in (
        (history, history_start, HISTORY_DAYS, False),
        (data, FIRST, days, True),
    ):
        day_of = pc.cast(table.column("started_at"), pa.timestamp("us")).cast(pa.date32())
        for offset in range(count):
            day = first + timedelta(days=offset)
            part = table.filter(pc.equal(day_of, pa.scalar(day, pa.date32())))
            lake.write("raw_conversations", day.isoformat(), part.select(RAW_CONVERSATIONS.names), RAW_CONVERSATIONS)
            if with_categories:
                lake.write("conversation_categories", day.isoformat(), part, CONVERSATION_CATEGORIES)
    return {
        "conversations": data.num_rows,
        "messages": int(pc.sum(data.column("messages")).as_py()),
        "users": len(pc.unique(data.column("user_id"))),
    }


def period_starts(period: str, days: int) -> list[date]:
    from conv_analytics.dates import period_end

    last = FIRST + timedelta(days=days)
    starts, start = [], FIRST
    while period_end(period, start) <= last:
        starts.append(start)
        start = period_end(period, start)
    return starts


def run_stage(root: str, period: str, days: int) -> dict[str, float]:
    """One stage as a backfill run does it; prints its figures as JSON (runs in its own process)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    from conv_analytics.analytics.rollups import compute_rollups, users_seen_before
    from conv_analytics.dates import period_end
    from conv_analytics.io.lake import ParquetLake
    from conv_analytics.io.query import connect
    from conv_analytics.schemas import CONVERSATION_CATEGORIES

    lake = ParquetLake.open(root)
    starts = period_starts(period, days)
    span = (period_end(period, starts[-1]) - starts[0]).days
    keys = [(starts[0] + timedelta(days=i)).isoformat() for i in range(span)]
    baseline = _rss_mib()

    def reference() -> None:
        categories = lake.read("conversation_categories", keys, CONVERSATION_CATEGORIES)
        con = duckdb.connect()
        con.register("c", categories)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SELECT CAST(started_at AS DATE) AS d, count(*) FROM c GROUP BY 1").fetchall()
        con.close()

    def rollup() -> dict[str, float]:
        started = time.perf_counter()
        categories = lake.read("conversation_categories", keys, CONVERSATION_CATEGORIES)
        loaded = time.perf_counter()
        history = connect(lake)
        users = pa.table({"user_id": pc.unique(categories.column("user_id"))})
        seen = users_seen_before(history, users, starts[0], HISTORY_TABLES)
        history.close()
        looked_up = time.perf_counter()
        rows = compute_rollups(categories, period, starts, seen).num_rows
        done = time.perf_counter()
        return {
            "rows": rows,
            "read_seconds": loaded - started,
            "history_seconds": looked_up - loaded,
            "compute_seconds": done - looked_up,
            "total_seconds": done - started,
        }

    reference()  # warm the file cache for both
    reference_seconds = min(_timed(reference) for _ in range(REPEAT))
    best = min((rollup() for _ in range(REPEAT)), key=lambda r: r["total_seconds"])
    return {
        "periods": len(starts),
        **best,
        "reference_seconds": reference_seconds,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": _rss_mib(),
    }


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stage", choices=list(ASSETS), help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.lake, args.stage, args.days)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-rollups-") as folder:
        root = str(Path(folder) / "lake")
        started = time.perf_counter()
        size = make_lake(root, args.messages, args.days)
        print(
            f"data: {size['messages']:,} messages in {size['conversations']:,} conversations of "
            f"{size['users']:,} users over {args.days} days from {FIRST} (+{HISTORY_DAYS} days of history), "
            f"written in {time.perf_counter() - started:.1f}s"
        )
        print(
            f"{'rollups':<16}{'periods':>8}{'rows':>8}{'read s':>9}{'history s':>11}{'compute s':>11}"
            f"{'total s':>9}{'ref s':>8}{'ratio':>7}{'peak MiB':>10}{'(base)':>8}"
        )
        for period, asset in ASSETS.items():
            out = subprocess.run(
                [sys.executable, __file__, "--stage", period, "--lake", root, "--days", str(args.days)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{asset:<16}{r['periods']:>8}{r['rows']:>8}{r['read_seconds']:>9.2f}"
                f"{r['history_seconds']:>11.2f}{r['compute_seconds']:>11.2f}{r['total_seconds']:>9.2f}"
                f"{r['reference_seconds']:>8.2f}{r['total_seconds'] / r['reference_seconds']:>7.1f}"
                f"{r['peak_rss_mib']:>10.0f}{r['baseline_rss_mib']:>8.0f}"
            )
        print(
            f"best of {REPEAT} runs each; ratio = total / reference (reading the same days from the lake "
            "and counting conversations per day); peak = max RSS of the stage's process, base = after imports."
        )


if __name__ == "__main__":
    main()
