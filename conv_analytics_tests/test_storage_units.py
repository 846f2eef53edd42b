"""Storage pieces that need no server: atomic local replacement, schema evolution, S3 error wording,
and the Arrow <-> MongoDB document conversion."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conv_analytics.config import Config
from conv_analytics.definitions import build_resources
from conv_analytics.io.lake import ParquetLake, explain_s3_error
from conv_analytics.io.mongo import MongoResource, from_documents, to_documents
from conv_analytics.resources import configured
from conv_analytics.schemas import RAW_CONVERSATIONS, ROLLUPS
from conv_analytics_tests.platform_support import stored_table

T0 = datetime(2026, 1, 1, 9, 30, tzinfo=timezone.utc)


def conversations(count: int) -> pa.Table:
    rows = [
        {"conversation_id": f"c{i}", "user_id": "u", "channel": "web", "started_at": T0, "status": "open"}
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=RAW_CONVERSATIONS)


def test_a_failed_local_write_keeps_the_old_partition_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = ParquetLake.open(str(tmp_path))
    lake.write("raw_conversations", "2026-01-01", conversations(3), RAW_CONVERSATIONS)
    real_write = pq.write_table

    def write_half_then_fail(table: pa.Table, where: str, **kwargs: object) -> None:
        real_write(table.slice(0, 1), where, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        lake.write("raw_conversations", "2026-01-01", conversations(10), RAW_CONVERSATIONS)
    monkeypatch.undo()
    assert lake.read("raw_conversations", ["2026-01-01"], RAW_CONVERSATIONS).num_rows == 3
    assert [p.name for p in (tmp_path / "raw_conversations" / "date=2026-01-01").iterdir()] == ["part-0.parquet"]


def test_schema_changes_are_conformed_not_crashed_on(tmp_path: Path) -> None:
    lake = ParquetLake.open(str(tmp_path))
    older = conversations(2).drop_columns(["ended_at"])
    lake.write("raw_conversations", "2026-01-01", older, older.schema)  # written before ended_at existed
    newer = conversations(1).append_column("extra", pa.array(["x"]))  # a column the schema does not know
    lake.write("raw_conversations", "2026-01-02", newer, RAW_CONVERSATIONS)
    table = lake.read("raw_conversations", ["2026-01-01", "2026-01-02"], RAW_CONVERSATIONS)
    assert table.schema == RAW_CONVERSATIONS
    assert table.column("ended_at").null_count == 3
    # reading only some columns, one of which the older file lacks
    some = lake.read("raw_conversations", ["2026-01-01", "2026-01-02"], RAW_CONVERSATIONS, ["user_id", "ended_at"])
    assert some.column_names == ["user_id", "ended_at"] and some.num_rows == 3
    assert some.column("ended_at").null_count == 3


def test_written_files_are_zstd_with_large_row_groups(tmp_path: Path) -> None:
    lake = ParquetLake.open(str(tmp_path))
    stats = lake.write("raw_conversations", "2026-01-01", conversations(1000), RAW_CONVERSATIONS)
    metadata = pq.ParquetFile(stats.path).metadata
    assert metadata.num_row_groups == 1 and metadata.row_group(0).column(0).compression == "ZSTD"


def test_columns_of_distinct_values_are_not_dictionary_encoded_and_repeated_ones_are(tmp_path: Path) -> None:
    rows = [
        {
            "conversation_id": f"conversation-{i:06d}",  # every value distinct, 380 KB of them
            "user_id": f"user-{i % 500}",
            "channel": "web",
            "started_at": T0 + timedelta(seconds=i * 3.7),
            "status": "open",
        }
        for i in range(20_000)
    ]
    table = pa.Table.from_pylist(rows, schema=RAW_CONVERSATIONS)
    stats = ParquetLake.open(str(tmp_path)).write("raw_conversations", "2026-01-01", table, RAW_CONVERSATIONS)
    ours = pq.ParquetFile(stats.path).metadata.row_group(0)
    arrow_default = pa.BufferOutputStream()
    pq.write_table(table, arrow_default, compression="zstd")
    theirs = pq.ParquetFile(pa.BufferReader(arrow_default.getvalue())).metadata.row_group(0)
    sizes = {
        ours.column(i).path_in_schema: (ours.column(i).total_compressed_size, theirs.column(i).total_compressed_size)
        for i in range(ours.num_columns)
    }
    # a dictionary of distinct values stops at 64 KiB (Arrow's default: 1 MiB), then plain pages follow
    assert sizes["conversation_id"][0] < 0.5 * sizes["conversation_id"][1]
    assert sizes["started_at"][0] < 0.9 * sizes["started_at"][1]
    for repeated in ("user_id", "channel", "status"):
        assert sizes[repeated][0] == sizes[repeated][1], repeated
    assert pq.read_table(stats.path).equals(table)


@pytest.mark.parametrize(
    ("message", "setting"),
    [
        ("AWS Error NETWORK_CONNECTION during HeadBucket operation: curlCode: 7", "S3_ENDPOINT_URL"),
        ("AWS Error ACCESS_DENIED during HeadObject operation", "AWS_SECRET_ACCESS_KEY"),
        ("AWS Error UNKNOWN (HTTP status 403) SignatureDoesNotMatch", "AWS_ACCESS_KEY_ID"),
        ("Bucket 'lake' not found. To create buckets, enable the allow_bucket_creation option.", "S3_BUCKET"),
    ],
)
def test_s3_errors_name_the_setting_to_fix(message: str, setting: str) -> None:
    assert setting in explain_s3_error(OSError(message), "lake", "http://127.0.0.1:8333")


def test_rollups_round_trip_through_documents() -> None:
    row = {
        "period_start": date(2026, 1, 5),
        "period": "week",
        "dimension": "topic",
        "value": "billing",
        "conversations": 4,
        **dict.fromkeys(("messages", "user_messages", "assistant_messages", "agent_messages", "active_users"), 2),
        "new_users": 1,
        "returning_users": 1,
        "avg_sentiment": -0.25,
        "top_topics": [{"label": "billing", "count": 4}],
        "top_intents": None,
    }
    table = pa.Table.from_pylist([row], schema=ROLLUPS)
    collection = stored_table("weekly_rollups").mongo
    assert collection is not None
    documents = to_documents(table, collection)
    assert documents[0]["_id"] == "2026-01-05|topic|billing"
    assert documents[0]["period_start"] == datetime(2026, 1, 5, tzinfo=timezone.utc)  # BSON has no date
    back = from_documents(documents, ROLLUPS)
    assert back.schema == ROLLUPS and back.to_pylist() == table.to_pylist()


def test_mongo_is_switched_on_by_mongodb_uri_and_keeps_it_out_of_run_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not configured(MongoResource, Config()).enabled
    assert build_resources(Config())["io_manager"].mongo is None
    uri = "mongodb://user:secret@127.0.0.1:27018/"
    monkeypatch.setenv("MONGODB_URI", uri)
    monkeypatch.setenv("MONGODB_DATABASE", "ops")
    resource = configured(MongoResource, Config.from_env())
    assert resource.enabled and resource.database == "ops"
    assert resource.model_dump()["uri"] == "MONGODB_URI"  # a reference to the variable, not the password
