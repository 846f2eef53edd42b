"""Storage throughput, each against its bare reference measured in the same run.

- Parquet: the IO manager's handle_output (split a week into daily partitions, conform to the schema,
  zstd files written atomically, storage metadata including the JSON size) against one bare
  pyarrow.parquet.write_table of the same table with the same encoding options. Target: <= 1.2x its time.
  Rows in time order (as conversation_categories emits them), and once more in no order (the manager
  then has to copy each partition's rows out). Local; also on S3 when S3_ENDPOINT_URL / S3_BUCKET
  are set (`eval $(scripts/servers env)`).
- MongoDB (when MONGODB_URI is set): MongoStore.replace of one day (conversion to documents,
  delete-then-insert in a transaction) against a bare insert_many of the same documents into a
  collection with the same indexes.
- The size of the Parquet files against the same rows as compact JSON lines.

Rows are synthetic categorised conversations (conv_analytics.analytics.synthetic). Parquet: best of
five runs, the two sides taking turns; MongoDB: best of two.

    .venv/bin/python bench/storage.py [--rows 700000] [--days 7] [--mongo-documents 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pymongo

from conv_analytics.analytics.synthetic import synthetic_categories
from conv_analytics.assets import build_asset_graph
from conv_analytics.io.lake import PARQUET_OPTIONS, ParquetLake, json_size
from conv_analytics.io.manager import LakeIOManager
from conv_analytics.io.mongo import MongoStore, to_documents
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import StoredTable
from conv_analytics.partitions import Partitions
from conv_analytics.schemas import CONVERSATION_CATEGORIES

FIRST = date(2024, 1, 1)
REPEAT = 5
GRAPH = build_asset_graph(Partitions.starting(FIRST))
ASSET = GRAPH.categories.key.path[-1]  # conversation_categories
METADATA = GRAPH.categories.specs_by_key[GRAPH.categories.key].metadata
STORED = StoredTable.of(METADATA)  # its schema, time column and MongoDB collection


def best(action: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def best_interleaved(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """Best times of two actions run turn about, so a busy spell on a shared machine hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(REPEAT):
        for action, spent in zip((first, second), times, strict=True):
            started = time.perf_counter()
            action()
            spent.append(time.perf_counter() - started)
    return min(times[0]), min(times[1])


def bench_parquet(table: pa.Table, days: int, root: str, lake_resource: LakeResource, label: str) -> None:
    lake = lake_resource.lake()
    keys = [(FIRST + timedelta(days=i)).isoformat() for i in range(days)]
    manager = LakeIOManager(lake=lake_resource)
    contexts = [  # one per run: a context takes its output metadata once
        dg.build_output_context(
            asset_key=ASSET,
            definition_metadata=METADATA,
            asset_partitions_def=GRAPH.partitions.daily,
            asset_partition_key_range=dg.PartitionKeyRange(keys[0], keys[-1]),
        )
        for _ in range(REPEAT)
    ]
    bare_path = f"{lake.root}/bare/{uuid.uuid4().hex}.parquet"
    if lake.is_local:
        os.makedirs(os.path.dirname(bare_path), exist_ok=True)

    def bare() -> None:
        pq.write_table(table, bare_path, filesystem=lake.fs, **PARQUET_OPTIONS)

    manager_seconds, bare_seconds = best_interleaved(lambda: manager.handle_output(contexts.pop(), table), bare)
    megabytes = table.nbytes / 1e6
    print(
        f"parquet {label}: {table.num_rows:,} rows ({megabytes:.1f} MB in memory) in {days} partitions: "
        f"manager {megabytes / manager_seconds:.1f} MB/s ({manager_seconds:.3f} s) vs bare write_table "
        f"{megabytes / bare_seconds:.1f} MB/s ({bare_seconds:.3f} s): {manager_seconds / bare_seconds:.2f}x "
        f"the bare time (target <= 1.2x)"
    )
    lake.fs.delete_dir_contents(f"{lake.root}/bare", missing_dir_ok=True)


def bench_size(table: pa.Table, days: int, root: str) -> None:
    lake = ParquetLake.open(root)
    parquet_bytes = sum(lake.fs.get_file_info(lake.partition_path(ASSET, k)).size for k in lake.keys(ASSET))
    json_bytes = json_size(table)
    print(
        f"size: {table.num_rows:,} rows as Parquet (zstd, {days} files) {parquet_bytes / 1e6:.1f} MB vs compact "
        f"JSON lines {json_bytes / 1e6:.1f} MB: Parquet is {parquet_bytes / json_bytes:.3f} of JSON "
        f"({json_bytes / parquet_bytes:.1f}x smaller)"
    )


def bench_mongo(table: pa.Table, uri: str, documents: int) -> None:
    day = table.slice(0, documents)  # the first day holds more rows than that
    database = f"bench_{uuid.uuid4().hex[:8]}"
    store = MongoStore(uri, database)
    try:
        start = datetime.combine(FIRST, datetime.min.time(), tzinfo=timezone.utc)
        collection = STORED.mongo
        assert collection is not None
        store.ensure_indexes(collection)
        manager_seconds = best(lambda: store.replace(STORED, start, start + timedelta(days=1), day), repeat=2)
        prepared = to_documents(day, collection)
        indexes = [pymongo.IndexModel([(f, 1) for f in fields]) for fields in collection.indexes]
        bare_times = []
        for attempt in range(2):  # each into a fresh collection with the same indexes, set up untimed
            bare_collection = store.db[f"bare{attempt}"]
            bare_collection.create_indexes(indexes)
            copies = [dict(d) for d in prepared]
            started = time.perf_counter()
            bare_collection.insert_many(copies, ordered=False)
            bare_times.append(time.perf_counter() - started)
        bare_seconds = min(bare_times)
        print(
            f"mongo ({'transactions' if store.transactions else 'upserts'}): {len(prepared):,} documents: manager "
            f"{len(prepared) / manager_seconds:,.0f} docs/s ({manager_seconds:.2f} s) vs bare insert_many "
            f"{len(prepared) / bare_seconds:,.0f} docs/s ({bare_seconds:.2f} s): "
            f"{manager_seconds / bare_seconds:.2f}x the bare time"
        )
    finally:
        store.client.drop_database(database)
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--mongo-documents", type=int, default=5_000)
    args = parser.parse_args()
    unordered = synthetic_categories(FIRST, args.days, args.rows // args.days, 60_000, seed=5)
    unordered = unordered.select(CONVERSATION_CATEGORIES.names).cast(CONVERSATION_CATEGORIES)
    # conversation_categories emits its rows ordered by started_at; the manager then cuts without copying
    table = unordered.sort_by([("started_at", "ascending"), ("conversation_id", "ascending")])
    with tempfile.TemporaryDirectory() as root:
        bench_parquet(table, args.days, root, LakeResource(root=root), "local, rows in time order")
        bench_size(table, args.days, root)
    with tempfile.TemporaryDirectory() as root:
        bench_parquet(unordered, args.days, root, LakeResource(root=root), "local, rows in no order")
    if os.environ.get("S3_ENDPOINT_URL") and os.environ.get("S3_BUCKET"):
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        resource = LakeResource(
            root=f"s3://{os.environ['S3_BUCKET']}/{prefix}", s3_endpoint_url=os.environ["S3_ENDPOINT_URL"]
        )
        try:
            label = f"s3 {os.environ['S3_ENDPOINT_URL']}, rows in time order"
            bench_parquet(table, args.days, resource.root, resource, label)
        finally:
            lake = resource.lake()
            lake.fs.delete_dir_contents(lake.root, missing_dir_ok=True)
    else:
        print("parquet s3: skipped (set S3_ENDPOINT_URL and S3_BUCKET, e.g. eval $(scripts/servers env))")
    if os.environ.get("MONGODB_URI"):
        bench_mongo(table, os.environ["MONGODB_URI"], args.mongo_documents)
    else:
        print("mongo: skipped (set MONGODB_URI, e.g. eval $(scripts/servers env))")


if __name__ == "__main__":
    main()
