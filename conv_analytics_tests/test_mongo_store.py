"""MongoStore against a real MongoDB-protocol server: partition replacement, read-back and errors.

The shared server (MONGODB_URI from `scripts/servers env`, or CONV_ANALYTICS_TEST_MONGODB_URI) runs
transactions; a private standalone instance covers the upsert path and a private --auth one covers
wrong credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pymongo
import pytest

from conv_analytics.io.errors import StoreError
from conv_analytics.io.mongo import MongoStore
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ROLLUPS
from conv_analytics_tests.platform_support import stored_table
from conv_analytics_tests.storage_support import PrivateServer, free_port, mongo_database  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAILY_ROLLUPS = stored_table("daily_rollups")
CATEGORIES = stored_table("conversation_categories")


def rollup_rows(day: date, values: list[str], conversations: int = 1) -> pa.Table:
    """A few daily rollup rows of the real schema (the non-null columns filled)."""
    rows = [
        {
            "period_start": day,
            "period": "day",
            "dimension": "topic",
            "value": value,
            **dict.fromkeys(("messages", "user_messages", "assistant_messages", "agent_messages", "active_users"), 1),
            "conversations": conversations,
            "new_users": 0,
            "returning_users": 1,
            "top_topics": [{"label": value, "count": conversations}],
        }
        for value in values
    ]
    return pa.Table.from_pylist(rows, schema=ROLLUPS)


def replace_day(store: MongoStore, day: date, table: pa.Table) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return store.replace(DAILY_ROLLUPS, start, start + timedelta(days=1), table)


def check_replacement(store: MongoStore) -> None:
    first, second = DAY.date(), DAY.date() + timedelta(days=1)
    for _ in range(3):
        assert replace_day(store, first, rollup_rows(first, ["billing", "delivery", "account"])) == 3
    replace_day(store, second, rollup_rows(second, ["billing"]))
    assert store.counts_by_day(DAILY_ROLLUPS) == {first.isoformat(): 3, second.isoformat(): 1}
    # a rerun with fewer rows removes the ones that are gone; counts are replaced, not added
    replace_day(store, first, rollup_rows(first, ["billing"], conversations=7))
    assert store.counts_by_day(DAILY_ROLLUPS) == {first.isoformat(): 1, second.isoformat(): 1}
    back = store.read(DAILY_ROLLUPS, DAY, DAY + timedelta(days=1))
    assert back.schema == ROLLUPS
    assert back.to_pylist() == rollup_rows(first, ["billing"], conversations=7).to_pylist()
    # an empty slice clears its day
    replace_day(store, second, ROLLUPS.empty_table())
    assert store.counts_by_day(DAILY_ROLLUPS) == {first.isoformat(): 1}


def test_partition_replacement_in_transactions(mongo_database) -> None:  # noqa: F811
    uri, name = mongo_database
    store = MongoStore(uri, name)
    assert store.transactions  # SecantusDB and real replica sets run them
    check_replacement(store)
    assert DAILY_ROLLUPS.mongo is not None
    indexes = [list(i["key"]) for i in store.db[DAILY_ROLLUPS.mongo.name].list_indexes()]
    assert ["dimension", "value", "period_start"] in indexes and ["period_start"] in indexes


def test_a_row_that_moved_to_another_day_is_not_duplicated(mongo_database) -> None:  # noqa: F811
    uri, name = mongo_database
    store = MongoStore(uri, name)

    def conversation(started: datetime) -> pa.Table:
        row = {
            "conversation_id": "c1",
            "user_id": "u1",
            "channel": "web",
            "started_at": started,
            "status": "open",
            "language": "en",
            "topic": "billing",
            "topic_confidence": 1.0,
            "primary_intent": "ask",
            "sentiment": "neutral",
            "sentiment_mean": 0.0,
            "sentiment_change": 0.0,
            **dict.fromkeys(
                (
                    "messages",
                    "user_messages",
                    "assistant_messages",
                    "agent_messages",
                    "turns",
                    "fallback_replies",
                    "negative_messages",
                    "positive_messages",
                ),
                0,
            ),
        }
        return pa.Table.from_pylist([row], schema=CONVERSATION_CATEGORIES)

    store.replace(CATEGORIES, DAY, DAY + timedelta(days=1), conversation(DAY + timedelta(hours=23)))
    later = DAY + timedelta(days=1)
    store.replace(CATEGORIES, later, later + timedelta(days=1), conversation(later + timedelta(hours=1)))
    # the conversation's start was corrected to the next day: it now lives there only
    assert store.counts_by_day(CATEGORIES) == {later.date().isoformat(): 1}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = PrivateServer(
        "mongodb", 28019, tmp_path_factory.mktemp("standalone"), CONV_ANALYTICS_MONGODB_OPTIONS="--standalone"
    )
    server.start()
    yield server.exports()["MONGODB_URI"]
    server.stop()


def test_partition_replacement_by_upserts_without_transactions(standalone: str) -> None:
    store = MongoStore(standalone, f"test_{uuid.uuid4().hex[:8]}")
    assert not store.transactions
    check_replacement(store)


def test_an_unreachable_server_names_mongodb_uri() -> None:
    port = free_port()  # a port nobody listens on
    store = MongoStore(f"mongodb://127.0.0.1:{port}/?directConnection=true", "x", timeout_ms=500)
    with pytest.raises(StoreError, match=f"MongoDB at 127.0.0.1:{port} is unreachable.*MONGODB_URI"):
        replace_day(store, DAY.date(), rollup_rows(DAY.date(), ["billing"]))


def test_an_invalid_uri_names_mongodb_uri() -> None:
    with pytest.raises(StoreError, match="MONGODB_URI is not a valid MongoDB connection string"):
        MongoStore("mongodb://127.0.0.1:notaport", "x")


def test_wrong_credentials_name_mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("auth")
    server = PrivateServer("mongodb", 28020, folder)
    server.start()
    uri = server.exports()["MONGODB_URI"]
    try:
        client = pymongo.MongoClient(uri)
        client.admin.command("createUser", "analyst", pwd="right-password", roles=["root"])
        client.close()
        server.stop()
        server.env["CONV_ANALYTICS_MONGODB_OPTIONS"] = "--auth"
        server.start()
        good = uri.replace("mongodb://", "mongodb://analyst:right-password@")
        MongoStore(good, "x").ping()
        bad = uri.replace("mongodb://", "mongodb://analyst:wrong-password@")
        with pytest.raises(StoreError, match="refused the credentials in MONGODB_URI") as raised:
            MongoStore(bad, "x", timeout_ms=2000).ping()
        assert "wrong-password" not in str(raised.value)
    finally:
        server.stop()
