"""S3 server-side encryption of the lake, against the real S3 server (SeaweedFS from `scripts/servers`).

What is verified: with S3_SSE=AES256 every partition the platform writes is stored with SSE-S3 (the
server reports `ServerSideEncryption: AES256` on the object), without it objects carry none, and both
read back alike through the lake and DuckDB. SeaweedFS has no KMS, so S3_SSE=aws:kms fails there, and it
must fail with one line naming the settings.
"""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pyarrow as pa
import pytest

from conv_analytics.config import Config
from conv_analytics.io import query as lake_query
from conv_analytics.io.errors import StoreError
from conv_analytics.io.resources import LakeResource, lake_resource
from conv_analytics.schemas import RAW_CONVERSATIONS
from conv_analytics_tests.storage_support import s3_prefix  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def conversations(day: str, count: int) -> pa.Table:
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    rows = [
        {"conversation_id": f"{day}-{i}", "user_id": f"u{i}", "channel": "web", "started_at": start, "status": "open"}
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=RAW_CONVERSATIONS)


def lake_with(target, prefix: str, sse: str, monkeypatch: pytest.MonkeyPatch) -> LakeResource:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", target.settings.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", target.settings.secret_key)
    config = Config(
        {
            Config.s3_bucket.env: target.bucket,
            Config.s3_prefix.env: prefix,
            Config.s3_endpoint_url.env: target.endpoint_url,
            Config.s3_sse.env: sse,
        }
    )
    return lake_resource(config)


def encryption_of(target, key: str) -> str | None:
    s3 = boto3.client(
        "s3",
        endpoint_url=target.endpoint_url,
        region_name=target.settings.region,
        aws_access_key_id=target.settings.access_key,
        aws_secret_access_key=target.settings.secret_key,
    )
    return s3.head_object(Bucket=target.bucket, Key=key).get("ServerSideEncryption")


def test_sse_s3_is_asked_for_on_every_write_and_reads_back(s3_prefix, monkeypatch) -> None:  # noqa: F811
    target, prefix = s3_prefix
    encrypted = lake_with(target, f"{prefix}/sse", "aes256", monkeypatch).lake()
    plain = lake_with(target, f"{prefix}/plain", "", monkeypatch).lake()
    assert encrypted.s3 is not None and encrypted.s3.sse == "AES256"
    days = {"2026-01-01": conversations("2026-01-01", 4), "2026-01-02": conversations("2026-01-02", 3)}
    encrypted.write_partitions("raw_conversations", days, RAW_CONVERSATIONS)
    plain.write("raw_conversations", "2026-01-01", days["2026-01-01"], RAW_CONVERSATIONS)
    for day in days:
        assert encryption_of(target, f"{prefix}/sse/raw_conversations/date={day}/part-0.parquet") == "AES256"
    assert encryption_of(target, f"{prefix}/plain/raw_conversations/date=2026-01-01/part-0.parquet") is None
    back = encrypted.read("raw_conversations", list(days), RAW_CONVERSATIONS)
    assert back.to_pylist() == pa.concat_tables(days.values()).to_pylist()
    rows = lake_query.connect(encrypted).sql("SELECT count(*) FROM raw_conversations").fetchall()
    assert rows == [(7,)]


def test_sse_kms_on_a_store_without_kms_is_one_line(s3_prefix, monkeypatch) -> None:  # noqa: F811
    target, prefix = s3_prefix
    lake = lake_with(target, prefix, "aws:kms", monkeypatch).lake()
    with pytest.raises(StoreError, match="could not encrypt with KMS: fix S3_SSE_KMS_KEY_ID or S3_SSE") as raised:
        lake.write("raw_conversations", "2026-01-01", conversations("2026-01-01", 1), RAW_CONVERSATIONS)
    assert target.settings.secret_key not in str(raised.value)


def test_an_unknown_sse_value_names_the_setting() -> None:
    with pytest.raises(ValueError, match="S3_SSE='AES128' is not valid: expected AES256 or aws:kms"):
        Config({Config.s3_sse.env: "AES128"}).value(Config.s3_sse)
