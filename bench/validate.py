"""Ingest's parsing and validation on demo exports: the columnar fast path against the per-record
validation, in one process on the same records.

Data: `conv-analytics demo`'s generator writes --days days of --per-day conversations (the default,
6,900 a day, is about 35,000 messages a day: 3M messages in 90 days) as JSON Lines into a temporary
folder. For the last full day, best of --repeat rounds each, the runs alternating:

- parse: the files source reading the day's records (orjson, placement by timestamp);
- validate: `normalize` on the parsed records, as the ingest assets call it (columnar path for plain
  records, per-record for the rest, then dedup, sort and redaction);
- reference: the same `normalize` with the columnar path switched off, every record validated one
  by one, as before it existed. Its output is compared with the validate run's (must be equal).

Figures are records per CPU second of this process (`time.process_time`), so that a machine shared
with other work slows both alike; wall seconds are printed too.

    .venv/bin/python bench/validate.py [--days 2] [--per-day 6900] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conv_analytics.dates import day_window  # noqa: E402
from conv_analytics.sources import base  # noqa: E402
from conv_analytics.sources.demo import write_demo  # noqa: E402
from conv_analytics.sources.files import FilesSource  # noqa: E402

LAST_DAY = date(2026, 11, 20)


def best(repeat: int, runs: dict[str, object]) -> dict[str, tuple[float, float, object]]:
    """Least CPU and wall seconds of each run over `repeat` alternating rounds, and its last result."""
    results: dict[str, tuple[float, float, object]] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            out = run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            previous = results.get(name)
            results[name] = (
                min(cpu, previous[0]) if previous else cpu,
                min(wall, previous[1]) if previous else wall,
                out,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--per-day", type=int, default=6900)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        summary = write_demo(Path(folder), LAST_DAY, args.days + 1, args.per_day)
        print(f"demo exports: {summary.messages:,} messages, {summary.conversations:,} conversations")
        source = FilesSource(Path(folder), now=datetime.combine(LAST_DAY, datetime.min.time(), timezone.utc))
        start, end = day_window(LAST_DAY - timedelta(days=1))
        plain_records = base._plain_records
        for entity in base.ENTITIES:
            records = list(source.fetch(entity, start, end))  # learns which files hold the day

            def columnar(records=records, entity=entity) -> base.Batch:
                base._plain_records = plain_records
                return base.normalize(entity, records, start, end, now=source.now)

            def one_by_one(records=records, entity=entity) -> base.Batch:
                base._plain_records = lambda *_: None
                try:
                    return base.normalize(entity, records, start, end, now=source.now)
                finally:
                    base._plain_records = plain_records

            results = best(
                args.repeat,
                {
                    "parse (files source)": lambda entity=entity: list(source.fetch(entity, start, end)),
                    "validate (columnar + per-record)": columnar,
                    "reference: validate one by one": one_by_one,
                },
            )
            fast, reference = (
                results["validate (columnar + per-record)"][2],
                results["reference: validate one by one"][2],
            )
            same = fast.table.equals(reference.table) and fast.quarantine.equals(reference.quarantine)
            n = len(records)
            print(f"\n{entity}: {n:,} records of {start.date()} ({fast.table.num_rows:,} raw), outputs equal: {same}")
            for name, (cpu, wall, _) in results.items():
                print(f"  {name:<34} {n / cpu:>11,.0f} records/CPU-s   {wall:6.2f} s wall")
            validate_cpu, reference_cpu = (
                results["validate (columnar + per-record)"][0],
                results["reference: validate one by one"][0],
            )
            parse_cpu = results["parse (files source)"][0]
            print(f"  validation: {reference_cpu / validate_cpu:.1f}x the reference's speed")
            print(f"  parse + validate: {n / (parse_cpu + validate_cpu):,.0f} records/CPU-s")
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
