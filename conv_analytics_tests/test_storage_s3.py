"""The Parquet lake on a real S3 store (SeaweedFS from `scripts/servers`, or CONV_ANALYTICS_TEST_S3_ENDPOINT).

Partition writes and reads, schema evolution, DuckDB over S3, and one clear error, naming the setting
to fix, for wrong credentials, a missing bucket and an unreachable server.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

from conv_analytics.cli import main
from conv_analytics.io import query as lake_query
from conv_analytics.io.errors import StoreError
from conv_analytics.io.lake import ParquetLake
from conv_analytics.schemas import RAW_CONVERSATIONS
from conv_analytics_tests.storage_support import free_port, s3_prefix  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def conversations(day: str, count: int, drop: tuple[str, ...] = ()) -> pa.Table:
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    rows = [
        {"conversation_id": f"{day}-{i}", "user_id": f"u{i}", "channel": "web", "started_at": start, "status": "open"}
        for i in range(count)
    ]
    table = pa.Table.from_pylist(rows, schema=RAW_CONVERSATIONS)
    return table.drop_columns(list(drop))


def test_partitions_are_written_replaced_and_listed(s3_prefix) -> None:  # noqa: F811
    target, prefix = s3_prefix
    lake = target.lake(prefix)
    for _ in range(3):
        stats = lake.write("raw_conversations", "2026-01-01", conversations("2026-01-01", 5), RAW_CONVERSATIONS)
    lake.write("raw_conversations", "2026-01-02", conversations("2026-01-02", 2), RAW_CONVERSATIONS)
    assert stats.rows == 5 and stats.bytes > 0
    assert lake.keys("raw_conversations") == ["2026-01-01", "2026-01-02"]
    assert lake.read("raw_conversations", ["2026-01-01", "2026-01-02"], RAW_CONVERSATIONS).num_rows == 7
    # one object per partition and no directory markers: the layout is <asset>/date=D/part-0.parquet
    infos = lake.fs.get_file_info(pafs.FileSelector(f"{lake.root}/raw_conversations", recursive=True))
    files = sorted(i.path.removeprefix(f"{lake.root}/") for i in infos if i.type == pafs.FileType.File)
    assert files == [f"raw_conversations/date=2026-01-0{d}/part-0.parquet" for d in (1, 2)]


def test_an_older_file_without_a_new_column_is_read_with_nulls(s3_prefix) -> None:  # noqa: F811
    target, prefix = s3_prefix
    lake = target.lake(prefix)
    old_schema = pa.schema([f for f in RAW_CONVERSATIONS if f.name != "ended_at"])
    lake.write("raw_conversations", "2026-01-01", conversations("2026-01-01", 3, drop=("ended_at",)), old_schema)
    lake.write("raw_conversations", "2026-01-02", conversations("2026-01-02", 2), RAW_CONVERSATIONS)
    table = lake.read("raw_conversations", ["2026-01-01", "2026-01-02"], RAW_CONVERSATIONS)
    assert table.schema == RAW_CONVERSATIONS and table.column("ended_at").null_count == 5
    con = lake_query.connect(lake)
    rows = con.sql("SELECT date, count(*), count(ended_at) FROM raw_conversations GROUP BY ALL ORDER BY 1").fetchall()
    assert [(str(d), n, e) for d, n, e in rows] == [("2026-01-01", 3, 0), ("2026-01-02", 2, 0)]


def test_wrong_credentials_name_the_aws_key_settings(s3_prefix) -> None:  # noqa: F811
    target, prefix = s3_prefix
    wrong = replace(target.settings, secret_key="not-the-secret")
    lake = ParquetLake.open(f"s3://{target.bucket}/{prefix}", s3=wrong)
    with pytest.raises(StoreError, match="refused the credentials: fix AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"):
        lake.write("raw_conversations", "2026-01-01", conversations("2026-01-01", 1), RAW_CONVERSATIONS)


def test_a_missing_bucket_names_s3_bucket(s3_prefix) -> None:  # noqa: F811
    target, _ = s3_prefix
    lake = ParquetLake.open("s3://no-such-bucket-conv-analytics/x", s3=target.settings)
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-conv-analytics' does not exist.*fix S3_BUCKET"):
        lake.read("raw_conversations", ["2026-01-01"], RAW_CONVERSATIONS)
    with pytest.raises(StoreError, match="fix S3_BUCKET"):
        lake.write("raw_conversations", "2026-01-01", conversations("2026-01-01", 1), RAW_CONVERSATIONS)


def test_an_unreachable_server_names_s3_endpoint_url(s3_prefix) -> None:  # noqa: F811
    target, _ = s3_prefix
    endpoint = f"http://127.0.0.1:{free_port()}"
    lake = ParquetLake.open(f"s3://{target.bucket}/x", s3=replace(target.settings, endpoint_url=endpoint))
    with pytest.raises(StoreError, match=f"S3 store at {endpoint} is unreachable: start it or fix S3_ENDPOINT_URL"):
        lake.keys("raw_conversations")


def test_the_query_command_reports_an_unreachable_store_without_a_traceback(
    s3_prefix,  # noqa: F811
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target, prefix = s3_prefix
    monkeypatch.setenv("CONV_ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv("S3_BUCKET", target.bucket)
    monkeypatch.setenv("S3_PREFIX", prefix)
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    result = CliRunner().invoke(main, ["query", "SELECT 1"])
    assert result.exit_code == 1 and "fix S3_ENDPOINT_URL" in result.output and "Traceback" not in result.output
