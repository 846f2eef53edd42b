"""The demo graph with MongoDB and the S3 lake switched on, against real servers.

Needs the servers of `scripts/servers start` (or an external MongoDB / S3 through
CONV_ANALYTICS_TEST_MONGODB_URI / CONV_ANALYTICS_TEST_S3_ENDPOINT); skips without them, fails under CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import dagster as dg
import pyarrow.fs as pafs
import pymongo
import pytest
from click.testing import CliRunner

from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.mongo import MongoStore
from conv_analytics.io.resources import LakeResource
from conv_analytics.runner import materialize_range
from conv_analytics_tests.conftest import DEMO_DAYS, DEMO_FIRST_DAY, demo_config
from conv_analytics_tests.platform_support import schema_of, stored_table
from conv_analytics_tests.storage_support import rows_by_day, stores_config, stores_lake

pytestmark = pytest.mark.integration

DAYS = [(DEMO_FIRST_DAY + timedelta(days=i)).isoformat() for i in range(DEMO_DAYS)]
WEEK = DEMO_FIRST_DAY.isoformat()  # the demo's one complete ISO week
MIRRORED = ("conversation_categories", "enriched_messages", "daily_rollups")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, dict[str, dg.ExecuteInProcessResult]]]:
    """The ten demo days (one single-run backfill) and their complete week, written to S3 and MongoDB."""
    demo = demo_config(tmp_path_factory.mktemp("s3_mongo"))
    with stores_config(demo.home, demo.start_date) as config:
        graph = Platform.build(config).graph
        results = {
            "daily": materialize_range(config, graph.daily_chain, DAYS),
            "weekly": materialize_range(config, [graph.rollups["week"].key], [WEEK]),
        }
        yield config, results


def lake_counts(lake: ParquetLake, asset: str) -> dict[str, int]:
    stored = stored_table(asset)
    table = lake.read(asset, lake.keys(asset), stored.schema)
    return rows_by_day(table, stored.time_column)


def test_counts_per_day_agree_in_mongo_s3_and_the_local_lake(stored, ten_day_lake: Config) -> None:
    config, _ = stored
    assert config.lake_root.startswith("s3://")
    s3 = stores_lake(config)
    local = ParquetLake.open(ten_day_lake.lake_root)
    store = MongoStore(config.mongodb_uri, config.mongodb_database)
    for asset in MIRRORED:
        assert s3.keys(asset) == local.keys(asset) == DAYS, asset
        expected = lake_counts(local, asset)
        assert sum(expected.values()) > 0
        assert lake_counts(s3, asset) == expected, asset
        # empty days have no documents; every other day matches exactly
        assert store.counts_by_day(stored_table(asset)) == {d: n for d, n in expected.items() if n}, asset
    assert s3.keys("weekly_rollups") == [WEEK]
    assert store.counts_by_day(stored_table("weekly_rollups")) == lake_counts(s3, "weekly_rollups")
    for asset in ("raw_conversations", "raw_messages"):
        assert lake_counts(s3, asset) == lake_counts(local, asset)


def test_mongo_reads_back_what_the_lake_holds(stored) -> None:
    config, _ = stored
    lake = stores_lake(config)
    store = MongoStore(config.mongodb_uri, config.mongodb_database)
    schema = schema_of("conversation_categories")
    start = datetime(DEMO_FIRST_DAY.year, DEMO_FIRST_DAY.month, DEMO_FIRST_DAY.day, tzinfo=timezone.utc)
    from_mongo = store.read(stored_table("conversation_categories"), start, start + timedelta(days=1))
    from_lake = lake.read("conversation_categories", [DEMO_FIRST_DAY.isoformat()], schema)
    assert from_mongo.schema == schema
    assert sorted(from_mongo.column("conversation_id").to_pylist()) == sorted(
        from_lake.column("conversation_id").to_pylist()
    )
    by_id = {r["conversation_id"]: r for r in from_lake.to_pylist()}
    for row in from_mongo.to_pylist():
        assert row["topic"] == by_id[row["conversation_id"]]["topic"]
        assert row["intents"] == by_id[row["conversation_id"]]["intents"]


def test_collections_have_the_indexes_their_queries_need(stored) -> None:
    config, _ = stored
    client = pymongo.MongoClient(config.mongodb_uri)
    conversations = client[config.mongodb_database]["conversations"]
    keys = [list(index["key"]) for index in conversations.list_indexes()]
    for wanted in (["user_id", "started_at"], ["started_at"], ["topic", "started_at"]):
        assert wanted in keys
    messages = [list(i["key"]) for i in client[config.mongodb_database]["messages"].list_indexes()]
    assert ["conversation_id", "sent_at"] in messages


def test_materialisations_report_storage_figures(stored) -> None:
    _, results = stored
    metadata = {
        m.asset_key.path[-1]: m.metadata
        for m in results["daily"].asset_materializations_for_node("conversation_categories")
    }
    figures = metadata["conversation_categories"]
    assert figures["rows"].value > 0 and figures["partitions_written"].value == DEMO_DAYS
    # ten days of about ten rows each: Parquet's per-file footer outweighs JSON here; bench/storage.py
    # shows the saving on realistic partition sizes
    assert figures["bytes"].value > 0 and figures["json_bytes"].value > 0
    assert figures["parquet_to_json_ratio"].value == round(figures["bytes"].value / figures["json_bytes"].value, 4)
    assert figures["mongo_documents"].value == figures["rows"].value
    collection = stored_table("conversation_categories").mongo
    assert collection is not None and figures["mongo_collection"].value == collection.name


def test_duckdb_answers_a_query_over_the_s3_lake(stored, ten_day_lake: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = stored
    sql = "SELECT topic, count(*) AS n FROM conversation_categories GROUP BY topic ORDER BY topic"
    from_s3 = LakeResource(root=config.lake_root, s3_endpoint_url=config.s3_endpoint_url).duckdb().sql(sql).fetchall()
    local = LakeResource(root=ten_day_lake.lake_root).duckdb().sql(sql).fetchall()
    assert from_s3 == local and sum(n for _, n in from_s3) > 0
    # the CLI, configured the usual way through the environment
    monkeypatch.setenv("CONV_ANALYTICS_HOME", str(config.home))
    monkeypatch.setenv("S3_BUCKET", config.s3_bucket)
    monkeypatch.setenv("S3_PREFIX", config.s3_prefix)
    monkeypatch.setenv("S3_ENDPOINT_URL", config.s3_endpoint_url)
    result = CliRunner().invoke(main, ["query", "SELECT count(*) AS n FROM daily_rollups", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"n": sum(lake_counts(stores_lake(config), "daily_rollups").values())}


def test_reruns_and_an_overlapping_backfill_leave_no_duplicates(stored) -> None:
    config, _ = stored
    graph = Platform.build(config).graph
    keys = [graph.categories.key, graph.rollups["day"].key]
    selection = [key.path[-1] for key in keys]
    lake = stores_lake(config)
    store = MongoStore(config.mongodb_uri, config.mongodb_database)
    before = {asset: (lake_counts(lake, asset), store.counts_by_day(stored_table(asset))) for asset in selection}
    for _ in range(3):
        materialize_range(config, keys, DAYS[2:5])
    materialize_range(config, keys, DAYS[3:8])  # a single-run backfill overlapping them
    for asset in selection:
        assert (lake_counts(lake, asset), store.counts_by_day(stored_table(asset))) == before[asset], asset
    categories = lake.read("conversation_categories", DAYS, schema_of("conversation_categories"))
    ids = categories.column("conversation_id").to_pylist()
    assert len(ids) == len(set(ids))
    collection = pymongo.MongoClient(config.mongodb_uri)[config.mongodb_database]["conversations"]
    assert collection.count_documents({}) == len(ids)
    assert sorted(collection.distinct("conversation_id")) == sorted(ids)
    # the lake holds exactly one file per partition: nothing left over from the reruns
    files = lake.fs.get_file_info(pafs.FileSelector(f"{lake.root}/conversation_categories", recursive=True))
    assert sorted(f.path.rsplit("/", 2)[-2] for f in files if f.type == pafs.FileType.File) == [
        f"date={d}" for d in DAYS
    ]
