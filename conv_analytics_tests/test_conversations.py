"""Conversation figures (`analytics.conversations`) against the SQL that defined them
(`conversation_reference`), on messy random tables and on the demo lake, bit for bit."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conv_analytics.analytics.conversations import conversation_rows, seconds
from conv_analytics.config import Config
from conv_analytics.io.lake import ParquetLake
from conv_analytics_tests.conftest import DEMO_DAYS, DEMO_FIRST_DAY
from conv_analytics_tests.conversation_reference import reference_rows
from conv_analytics_tests.platform_support import schema_of

TS = pa.timestamp("us", tz="UTC")
# the columns arg_min and arg_max give: where two messages share a time, the SQL's pick is its plan's
TIE_COLUMNS = ("first_response_seconds", "sentiment_change")
WORDS = ["hello", "refund", "🙂", "Grüße", "订单", "line\nbreak", "", "x" * 300]


def random_tables(seed: int, conversations: int = 300, messages: int = 3_000) -> tuple[pa.Table, pa.Table]:
    """Conversations and their messages with what real ones hold: system and unknown roles, messages of
    conversations not in the table, conversations without messages, nulls where the schema allows
    them, spans of days, ends before starts, and messages sharing a timestamp."""
    rng = np.random.default_rng(seed)
    start = 1_790_000_000_000_000 + rng.integers(0, 10**11, conversations)
    ended = start + rng.integers(-(10**9), 3 * 86_400_000_000, conversations)
    ids = [f"c{i:04d}" for i in rng.permutation(conversations)]
    table = pa.table(
        {
            "conversation_id": pa.array(ids, pa.string()),
            "user_id": pa.array([f"u{i % 40}" for i in range(conversations)], pa.string()),
            "channel": pa.array(["web"] * conversations, pa.string()),
            "started_at": pa.array(start, TS),
            "ended_at": pa.array(ended, TS, mask=rng.random(conversations) < 0.4),
            "status": pa.array(["resolved"] * conversations, pa.string()),
        }
    )
    owner = rng.integers(0, conversations + 30, messages)  # 30 conversations not in the table
    owner_ids = [ids[o] if o < conversations else f"other{o}" for o in owner]
    base = np.where(owner < conversations, start[np.minimum(owner, conversations - 1)], start[0])
    sent = base + rng.choice([0, 1, 500_000, 61_000_000, 4 * 86_400_000_000 + 7], messages) * rng.integers(
        0, 4, messages
    )

    def pick(values: list, size: int = messages, nulls: float = 0.0) -> list:
        return [None if rng.random() < nulls else values[i] for i in rng.integers(0, len(values), size)]

    text = pick(WORDS)
    table_messages = pa.table(
        {
            "conversation_id": pa.array(owner_ids, pa.string()),
            "message_id": pa.array([f"m{i:05d}" for i in rng.permutation(messages)], pa.string()),
            "role": pa.array(pick(["user", "user", "assistant", "agent", "system", "bot"]), pa.string()),
            "sent_at": pa.array(sent, TS),
            "text": pa.array(text, pa.large_string()),
            "text_en": pa.array(pick(WORDS, nulls=0.7), pa.large_string()),
            "translation": pa.array(pick(["none", "translated", "no_pair"], nulls=0.2), pa.string()),
            "language": pa.array(pick(["en", "de", "fr", "und"]), pa.string()),
            "intent": pa.array(pick(["refund", "greeting", "track"], nulls=0.2), pa.string()),
            "sentiment": pa.array(pick(["negative", "neutral", "positive"]), pa.string()),
            "sentiment_score": pa.array(rng.uniform(-1, 1, messages) * rng.choice([1, 1e-3, 1e-9], messages)),
            "is_fallback": pa.array(rng.random(messages) < 0.1),
        }
    )
    return table, table_messages


def tied(messages: pa.Table) -> set[str]:
    """Conversations with two non-system messages at the same time."""
    rows = messages.filter(pc.not_equal(messages.column("role"), "system"))
    counts = rows.group_by(["conversation_id", "sent_at"]).aggregate([("message_id", "count")])
    return set(counts.filter(pc.greater(counts.column("message_id_count"), 1)).column("conversation_id").to_pylist())


def assert_same(conversations: pa.Table, messages: pa.Table) -> None:
    ours = conversation_rows(conversations, messages)
    reference = reference_rows(conversations, messages)
    assert ours.column_names == reference.column_names
    assert ours.column("conversation_id").equals(reference.column("conversation_id"))
    ties = tied(messages)
    untied = pa.array([i not in ties for i in ours.column("conversation_id").to_pylist()], pa.bool_())
    for name in reference.column_names:
        mine = ours.column(name).cast(reference.schema.field(name).type).combine_chunks()
        theirs = reference.column(name).combine_chunks()
        if name in TIE_COLUMNS:
            mine, theirs = mine.filter(untied), theirs.filter(untied)
        assert mine.equals(theirs), name


@pytest.mark.parametrize("seed", range(6))
def test_the_figures_are_those_of_the_sql_on_messy_tables(seed: int) -> None:
    conversations, messages = random_tables(seed)
    assert len(tied(messages)) > 10  # the tie columns are compared on the others only
    assert_same(conversations, messages)
    # neither the rows' order nor the messages' chunks matter
    reversed_conversations = conversations.take(pa.array(np.arange(conversations.num_rows)[::-1]))
    assert_same(reversed_conversations, pa.concat_tables([messages.slice(1500), messages.slice(0, 1500)]))


def test_the_figures_are_those_of_the_sql_on_the_demo_lake(ten_day_lake: Config) -> None:
    lake = ParquetLake.open(ten_day_lake.lake_root)
    days = [(DEMO_FIRST_DAY + timedelta(days=i)).isoformat() for i in range(DEMO_DAYS)]
    conversations = lake.read("raw_conversations", days[:-1], schema_of("raw_conversations"))
    messages = lake.read("enriched_messages", days, schema_of("enriched_messages"))
    assert messages.num_rows > 500
    assert_same(conversations, messages)


def test_of_messages_at_the_same_time_the_lower_id_comes_first() -> None:
    conversations, _ = random_tables(0, conversations=1, messages=0)
    at = conversations.column("started_at")[0].value
    messages = pa.table(
        {
            "conversation_id": ["c0000"] * 4,
            "message_id": ["m2", "m1", "m3", "m4"],
            "role": ["user", "user", "assistant", "assistant"],
            "sent_at": pa.array([at, at, at + 2_000_000, at + 2_000_000], TS),
            "text": pa.array(["second", "first", "a", "b"], pa.large_string()),
            "text_en": pa.array([None] * 4, pa.large_string()),
            "translation": pa.array([None] * 4, pa.string()),
            "language": ["en", "de", "en", "en"],
            "intent": ["track", "refund", None, None],
            "sentiment": ["neutral"] * 4,
            "sentiment_score": [0.5, -0.25, 0.0, 0.0],
            "is_fallback": [False] * 4,
        }
    )
    row = conversation_rows(conversations, messages).to_pylist()[0]
    assert row["user_text"] == "first\nsecond"
    assert row["intents"] == ["refund", "track"]
    assert row["sentiment_change"] == 0.75  # m2's score minus m1's
    assert row["response_seconds"] == [2.0]  # m3 answers m2; m4 follows an assistant's message
    assert row["first_response_seconds"] == 2.0
    assert row["language"] == "de"  # one each: the first by name


def test_conversations_without_messages_and_no_conversations() -> None:
    conversations, messages = random_tables(1, conversations=5, messages=40)
    system_only = messages.filter(pc.equal(messages.column("role"), "system"))
    for kept in (messages.slice(0, 0), system_only):
        rows = conversation_rows(conversations, kept)
        assert rows.num_rows == 5
        assert rows.column("user_messages").to_pylist() == [0] * 5
        assert rows.column("user_text").to_pylist() == [""] * 5
        assert rows.column("response_seconds").to_pylist() == [[]] * 5
        assert rows.column("language").to_pylist() == ["und"] * 5
        assert_same(conversations, kept)
    assert conversation_rows(conversations.slice(0, 0), messages).num_rows == 0
    assert_same(conversations.slice(0, 0), messages)


def test_seconds_are_duckdbs_epoch_of_the_interval() -> None:
    rng = np.random.default_rng(3)
    first = rng.integers(1_700_000_000_000_000, 1_800_000_000_000_000, 40_000)
    spans = np.concatenate([rng.integers(-(10**13), 10**13, 30_000), rng.integers(-(10**6), 10**6, 10_000)])
    pairs = pa.table({"a": pa.array(first, TS), "b": pa.array(first + spans, TS)})
    with duckdb.connect() as con:
        con.register("pairs", pairs)
        epoch = con.sql("SELECT epoch(b - a) AS s FROM pairs").to_arrow_table().column("s").to_numpy()
    assert np.array_equal(seconds(spans), epoch)
    assert not np.array_equal(spans / 1e6, epoch)  # the plain division rounds otherwise
