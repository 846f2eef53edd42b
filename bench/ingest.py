"""How fast raw_messages collects from a real NocoDB, against a bare paging loop over the same table.

Needs a NocoDB (`scripts/servers start nocodb`, `eval "$(scripts/servers env)"`). The first run
loads DailyDialog's train split into a base of its own (`bench-ingest`, kept for later runs) until it
holds at least --messages messages, spread over --days days. Then, in the same process, best of
--repeat each:

- bare loop: one requests.Session paging the whole messages table by offset (1000 rows a page,
  stopping on pageInfo.isLastPage), decoding the JSON and counting rows: the floor any client pays.
  Once with every column (what NocoDB sends by default), once with only the columns we ask for;
- collection: the platform's NocoDB source reading the same rows day by day, as raw_messages does
  (date filters, the arrival check for rows without a time, parallel pages, dedup by Id) into
  RawRecords; and, for comparison, all days in one call, their pages fetched side by side;
- raw_messages: the whole asset in process (collection, validation, redaction, Parquet), rows/s.

The runs alternate round by round, so a busy moment of a shared machine hurts them alike.
The target is collection <= 1.15 x bare loop. The client-side rate limit is off for both unless
--requests-per-second is given (this NocoDB does not throttle; the default of 4/s protects servers
that do, and caps 1000-row pages at 4,000 rows/s).

    .venv/bin/python bench/ingest.py [--messages 20000] [--days 4] [--threads 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import requests

BASE = "bench-ingest"
FIRST = date(2026, 5, 4)
REPO = Path(__file__).resolve().parents[1]


def interleaved_best(repeat: int, runs: dict[str, Callable[[], int]]) -> dict[str, tuple[float, int]]:
    """Fastest wall time of each run over `repeat` rounds (the runs alternate, so a busy moment of a
    shared machine hurts them alike), and the rows each saw."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    rows: dict[str, int] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            rows[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: (min(times[name]), rows[name]) for name in runs}


def conversations_for(path: Path, messages: int) -> int:
    """How many conversations of a JSONL file hold at least `messages` messages."""
    total = 0
    with path.open(encoding="utf-8") as lines:
        for count, line in enumerate(lines, start=1):
            total += len(json.loads(line).get("messages", []))
            if total >= messages:
                return count
    raise SystemExit(f"{path} holds only {total} messages, fewer than {messages}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--requests-per-second", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    url, token = os.environ.get("NOCODB_URL", ""), os.environ.get("NOCODB_API_TOKEN", "")
    if not (url and token):
        print(
            'NOCODB_URL / NOCODB_API_TOKEN are not set: scripts/servers start nocodb; eval "$(scripts/servers env)"',
            file=sys.stderr,
        )
        return 2

    import dagster as dg

    from conv_analytics.assets.ingest import build_ingest_asset
    from conv_analytics.dates import day_window, days_between
    from conv_analytics.io.lake import ParquetLake
    from conv_analytics.io.manager import LakeIOManager
    from conv_analytics.io.resources import LakeResource
    from conv_analytics.nocodb.client import NocoDBClient
    from conv_analytics.nocodb.resource import NocoDBResource
    from conv_analytics.nocodb.setup import ensure_tables, load_jsonl
    from conv_analytics.partitions import Partitions
    from conv_analytics.schemas import RAW_MESSAGES
    from conv_analytics.sources.resource import SourceResource

    # raw_messages and quarantined_messages, one read, on daily partitions from the first bench day
    ingest_messages = build_ingest_asset("messages", Partitions.starting(FIRST).daily)

    shared = Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")
    loader = NocoDBClient(url, token, requests_per_second=0)
    tables = ensure_tables(loader, BASE)
    held = loader.count(tables.messages)
    if held < args.messages:
        if held:  # an older, smaller load: start again
            loader.request("DELETE", f"/api/v2/meta/bases/{tables.base_id}", what="the old bench base")
            tables = ensure_tables(loader, BASE)
        path = shared / "dailydialog" / "train.jsonl"
        started = time.perf_counter()
        limit = conversations_for(path, args.messages)
        _, loaded = load_jsonl(loader, tables, path, FIRST, args.days, limit)
        print(f"loaded {loaded} messages into base {BASE!r} in {time.perf_counter() - started:.1f}s")
        held = loader.count(tables.messages)

    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=timezone.utc)
    # one more day: conversations started on the last day run past midnight
    end = start + timedelta(days=args.days + 1)
    records_url = f"{url.rstrip('/')}/api/v2/tables/{tables.messages}/records"

    def bare_loop(fields: str = "") -> int:
        rows = offset = 0
        params: dict[str, object] = {"limit": args.page_size, "sort": "Id"}
        if fields:
            params["fields"] = fields
        with requests.Session() as session:
            session.headers["xc-token"] = token
            while True:
                answer = session.get(records_url, params={**params, "offset": offset}, timeout=60).json()
                page = answer["list"]
                rows += len(page)
                offset += len(page)
                if answer["pageInfo"].get("isLastPage", True) or not page:
                    return rows

    nocodb = NocoDBResource(
        url=url,
        api_token=token,
        base=BASE,
        page_size=args.page_size,
        threads=args.threads,
        requests_per_second=args.requests_per_second,
    )

    def collection(whole_range: bool = False) -> int:
        """The source as raw_messages uses it: one day after the other, every record consumed
        (or, for comparison, the whole range in one call, its days fetched side by side)."""
        source = nocodb.source()
        windows = [(start, end)] if whole_range else [day_window(day) for day in days_between(start, end)]
        count = sum(1 for window in windows for _ in source.fetch("messages", *window))
        source.client.close()
        return count

    def materialise() -> int:
        with tempfile.TemporaryDirectory() as root:
            lake = LakeResource(root=root)
            result = dg.materialize(
                [ingest_messages],
                resources={
                    "lake": lake,
                    "io_manager": LakeIOManager(lake=lake),
                    "source": SourceResource(files_dir=root, nocodb=nocodb),
                },
                tags={
                    "dagster/asset_partition_range_start": start.date().isoformat(),
                    "dagster/asset_partition_range_end": (end - timedelta(days=1)).date().isoformat(),
                },
            )
            assert result.success
            return ParquetLake.open(root).read("raw_messages", keys, RAW_MESSAGES).num_rows

    keys = [d.isoformat() for d in days_between(start, end)]
    bare_loop()  # warm the server's caches once, for both sides
    platform_fields = ",".join(NocoDBResource(url=url, api_token=token, base=BASE).source().fields("messages"))
    best = interleaved_best(
        args.repeat,
        {
            "bare": bare_loop,
            "bare_fields": lambda: bare_loop(platform_fields),
            "collection": collection,
            "collection_range": lambda: collection(whole_range=True),
            "asset": materialise,
        },
    )
    (bare_seconds, bare_rows), (collect_seconds, collected), (asset_seconds, stored) = (
        best["bare"],
        best["collection"],
        best["asset"],
    )
    narrow_seconds, narrow_rows = best["bare_fields"]
    range_seconds, range_rows = best["collection_range"]
    ratio = collect_seconds / bare_seconds
    rate = "off" if args.requests_per_second <= 0 else f"{args.requests_per_second:g}/s"
    print(
        f"NocoDB {url}, base {BASE!r}: {held} messages over {args.days} days (+1 spill-over day); "
        f"page size {args.page_size}, {args.threads} threads, client rate limit {rate}; best of {args.repeat}"
    )
    for label, rows, seconds, note in (
        ("bare paging loop", bare_rows, bare_seconds, " (every column, as NocoDB sends by default)"),
        ("bare loop, our columns", narrow_rows, narrow_seconds, f" (fields={platform_fields})"),
        ("platform collection", collected, collect_seconds, " (day by day, as raw_messages reads)"),
        ("collection, one call", range_rows, range_seconds, " (all days in one fetch, side by side)"),
        ("raw_messages (asset)", stored, asset_seconds, " (collection + validation + redaction + Parquet)"),
    ):
        print(f"{label + ':':<26} {rows:>7} rows in {seconds:6.2f}s  {rows / seconds:>9,.0f} rows/s{note}")
    print(f"collection / bare loop:  {ratio:.3f}  (target <= 1.15: {'met' if ratio <= 1.15 else 'NOT met'})")
    print(f"collection / bare loop with our columns: {collect_seconds / narrow_seconds:.3f}")
    print(f"raw_messages / bare loop: {asset_seconds / bare_seconds:.3f}")
    if collected != bare_rows or stored != bare_rows:
        print(f"row counts differ: bare {bare_rows}, collected {collected}, stored {stored}", file=sys.stderr)
        return 1
    return 0 if ratio <= 1.15 else 1


if __name__ == "__main__":
    sys.exit(main())
