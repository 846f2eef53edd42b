"""A store that goes away in the middle of a run: the run fails naming the store, nothing half-written
is visible, and a rerun after the server is back completes with nothing lost and nothing duplicated.

Uses private SeaweedFS and SecantusDB instances on their own ports (started with scripts/servers.d),
so stopping them disturbs no other test. The asset is a stand-in for conversation_categories that
makes its rows without NLP, so the run spends its time in the IO manager and the stores.
"""

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pymongo
import pytest
from dagster_aws.s3 import S3Resource

from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.manager import LakeIOManager
from conv_analytics.io.mongo import MongoResource, MongoStore
from conv_analytics.io.resources import LakeResource
from conv_analytics.schemas import CONVERSATION_CATEGORIES
from conv_analytics_tests.platform_support import asset_graph, stored_table
from conv_analytics_tests.storage_support import (
    PRIVATE_ACCESS_KEY,
    PRIVATE_SECRET_KEY,
    SEAWEEDFS_PORTS,
    PrivateServer,
    free_port,
)

pytestmark = pytest.mark.integration

DAYS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
PER_DAY = 150
CATEGORIES = stored_table("conversation_categories")  # where the real asset is stored: lake and MongoDB


def day_rows(key: str) -> list[dict]:
    start = datetime.fromisoformat(key).replace(tzinfo=timezone.utc)
    return [
        {
            "conversation_id": f"{key}-{i}",
            "user_id": f"u{i % 40}",
            "channel": "web",
            "started_at": start + timedelta(seconds=500 * i),
            "status": "resolved",
            "language": "en",
            "messages": 4,
            "user_messages": 2,
            "assistant_messages": 2,
            "agent_messages": 0,
            "turns": 2,
            "fallback_replies": 0,
            "topic": ("billing", "delivery", "account")[i % 3],
            "topic_confidence": 0.9,
            "primary_intent": "ask",
            "intents": ["ask", "thank"],
            "sentiment": "neutral",
            "sentiment_mean": 0.0,
            "sentiment_change": 0.0,
            "negative_messages": 0,
            "positive_messages": 0,
        }
        for i in range(PER_DAY)
    ]


@dg.asset(
    name="conversation_categories",
    partitions_def=asset_graph().partitions.daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata=CATEGORIES.metadata(),
)
def stand_in(context: dg.AssetExecutionContext) -> pa.Table:
    rows = [row for key in context.partition_keys for row in day_rows(key)]
    return pa.Table.from_pylist(rows, schema=CONVERSATION_CATEGORIES)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivateServer, PrivateServer]]:
    folder: Path = tmp_path_factory.mktemp("private_servers")
    s3 = PrivateServer("s3", free_port(SEAWEEDFS_PORTS), folder)
    mongo = PrivateServer("mongodb", free_port(), folder)
    s3.start()
    try:
        mongo.start()
        try:
            yield s3, mongo
        finally:
            mongo.stop()
    finally:
        s3.stop()


def io_manager(s3: PrivateServer, mongo: PrivateServer, run: str) -> LakeIOManager:
    endpoint = s3.exports()["S3_ENDPOINT_URL"]
    credentials = S3Resource(
        endpoint_url=endpoint, aws_access_key_id=PRIVATE_ACCESS_KEY, aws_secret_access_key=PRIVATE_SECRET_KEY
    )
    return LakeIOManager(
        lake=LakeResource(root=f"s3://private-lake/{run}", s3=credentials),
        mongo=MongoResource(uri=mongo.exports()["MONGODB_URI"], database=run, timeout_ms=2000),
    )


@dg.asset(
    partitions_def=asset_graph().partitions.daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    ins={"categories": dg.AssetIn(key=stand_in.key)},
    io_manager_key="memory",
)
def reader(categories: pa.Table) -> int:
    return categories.num_rows


def materialise(manager: LakeIOManager, selection: dg.AssetsDefinition = stand_in) -> tuple[bool, str]:
    """Materialise `selection` over DAYS; the failure's description (every failure must be a dg.Failure)."""
    result = dg.materialize(
        [stand_in, reader],
        selection=[selection.key],
        resources={"io_manager": manager, "memory": dg.InMemoryIOManager()},
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
        raise_on_error=False,
    )
    failures = [event.step_failure_data for event in result.all_events if event.is_step_failure]
    assert all(data.user_failure_data is not None for data in failures), [data.error.message for data in failures]
    return result.success, " ".join(data.user_failure_data.description or "" for data in failures)


def state(manager: LakeIOManager) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per day in the lake (each visible file read whole) and documents per day in MongoDB."""
    lake: ParquetLake = manager.lake.lake()
    in_lake = {
        key: lake.read("conversation_categories", [key], CONVERSATION_CATEGORIES).num_rows
        for key in lake.keys("conversation_categories")
    }
    assert manager.mongo is not None
    return in_lake, MongoStore(manager.mongo.uri, manager.mongo.database).counts_by_day(CATEGORIES)


def assert_complete(manager: LakeIOManager) -> None:
    in_lake, in_mongo = state(manager)
    assert in_lake == in_mongo == dict.fromkeys(DAYS, PER_DAY)
    assert CATEGORIES.mongo is not None and CATEGORIES.mongo.name == "conversations"
    collection = pymongo.MongoClient(manager.mongo.uri)[manager.mongo.database][CATEGORIES.mongo.name]
    assert len(collection.distinct("_id")) == collection.count_documents({}) == PER_DAY * len(DAYS)


def stop_before(monkeypatch: pytest.MonkeyPatch, owner: type, method: str, call: int, server: PrivateServer) -> list:
    """Stop `server` as the `call`-th call of owner.method begins: the middle of the run.

    Returns a list that receives that call's arguments (asset, partition key or window, ...).
    """
    original = getattr(owner, method)
    calls: list[tuple] = []
    stopped_at: list = []
    lock = threading.Lock()

    def wrapped(self, *args, **kwargs):
        with lock:  # partitions are written in parallel: count and stop in one place
            calls.append(args)
            if len(calls) == call:
                server.stop()
                stopped_at.extend(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, wrapped)
    return stopped_at


def test_s3_going_away_mid_run_fails_clearly_and_a_rerun_completes(servers, monkeypatch: pytest.MonkeyPatch) -> None:
    s3, mongo = servers
    manager = io_manager(s3, mongo, f"s3fault{uuid.uuid4().hex[:8]}")
    stopped_at = stop_before(monkeypatch, ParquetLake, "write", 3, s3)
    ok, message = materialise(manager)
    assert not ok
    assert "S3" in message and "unreachable" in message and "S3_ENDPOINT_URL" in message, message
    monkeypatch.undo()
    s3.start()
    in_lake, in_mongo = state(manager)
    # partitions are written in parallel: those that made it are whole, the one cut off is absent
    assert stopped_at[1] not in in_lake and set(in_lake.values()) <= {PER_DAY}
    assert in_mongo == {}  # the mirror runs after the lake: nothing of the failed run reached MongoDB
    ok, message = materialise(manager)
    assert ok, message
    assert_complete(manager)


def test_mongo_going_away_mid_run_fails_clearly_and_a_rerun_completes(servers, monkeypatch: pytest.MonkeyPatch) -> None:
    s3, mongo = servers
    manager = io_manager(s3, mongo, f"mongofault{uuid.uuid4().hex[:8]}")
    stop_before(monkeypatch, MongoStore, "replace", 2, mongo)
    ok, message = materialise(manager)
    assert not ok
    assert "MongoDB" in message and "unreachable" in message and "MONGODB_URI" in message, message
    monkeypatch.undo()
    mongo.start()
    in_lake, in_mongo = state(manager)
    assert in_lake == dict.fromkeys(DAYS, PER_DAY)  # the lake, written first, is complete
    assert in_mongo == {DAYS[0]: PER_DAY}  # one whole day; the day being written when it went is absent
    ok, message = materialise(manager)
    assert ok, message
    assert_complete(manager)
    ok, message = materialise(manager)  # and once more: replaced, not appended
    assert ok, message
    assert_complete(manager)


def test_s3_going_away_before_a_read_fails_the_reading_step_with_one_line(servers) -> None:
    s3, mongo = servers
    manager = io_manager(s3, mongo, f"s3read{uuid.uuid4().hex[:8]}")
    ok, message = materialise(manager)
    assert ok, message
    s3.stop()
    port = int(s3.env["CONV_ANALYTICS_S3_PORT"])
    # weed's local sockets are named for the ports it takes
    sockets = [path for offset in SEAWEEDFS_PORTS for path in Path("/tmp").glob(f"seaweedfs-*-{port + offset}.sock")]
    assert sockets == [], "the stopped server left its sockets behind"
    try:
        ok, message = materialise(manager, reader)
    finally:
        s3.start()
    assert not ok
    assert "reading conversation_categories" in message and "S3_ENDPOINT_URL" in message, message
    assert "\n" not in message and PRIVATE_SECRET_KEY not in message
    ok, message = materialise(manager, reader)
    assert ok, message
