"""Rollups against an independent SQL reference on synthetic conversations with the awkward cases built in:
a conversation across midnight, an ISO week across a month boundary (2024-W09: Feb 26 - Mar 3), a
user who returns after a month, and a day without conversations (Feb 29)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conv_analytics.analytics import checks
from conv_analytics.analytics.rollups import compute_rollups, users_seen_before
from conv_analytics.analytics.synthetic import synthetic_categories
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.query import connect
from conv_analytics.schemas import CONVERSATION_CATEGORIES, RAW_CONVERSATIONS
from conv_analytics_tests.platform_support import history_tables
from conv_analytics_tests.rollup_reference import assert_matches, period_end, reference_rollups

EMPTY_DAY = date(2024, 2, 29)
MIDNIGHT_DAY = date(2024, 2, 27)
RETURN_DAY = date(2024, 2, 14)
BOUNDARY_WEEK = date(2024, 2, 26)


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


def _conversation(cid: str, user: str, channel: str, started: datetime, **overrides: object) -> dict:
    row = {
        "conversation_id": cid,
        "user_id": user,
        "channel": channel,
        "started_at": started,
        "ended_at": started + timedelta(minutes=30),
        "status": "resolved",
        "language": "en",
        "duration_seconds": 1800.0,
        "messages": 9,
        "user_messages": 4,
        "assistant_messages": 4,
        "agent_messages": 1,
        "turns": 4,
        "first_response_seconds": 3.5,
        "response_seconds": [3.5, 8.0, 120.0, 2.25],
        "fallback_replies": 1,
        "translated_messages": 2,
        "topic": "billing",
        "topic_confidence": 0.9,
        "discovered_topic_id": 4,
        "discovered_topic": "invoice · payment · charge",
        "discovered_topic_score": 0.71,
        "primary_intent": "refund",
        "intents": ["greeting", "refund", "refund", None],
        "sentiment": "negative",
        "sentiment_mean": -0.4,
        "sentiment_change": 0.2,
        "negative_messages": 2,
        "positive_messages": 1,
    }
    row.update(overrides)
    return row


@pytest.fixture(scope="module")
def history() -> pa.Table:
    """January: what was seen before the months under test (includes the returning user)."""
    january = synthetic_categories(date(2024, 1, 1), 31, 20, 300, seed=1, id_prefix="j")
    returner = _conversation("r-jan", "returner", "fax", _at(date(2024, 1, 10), 9, 0))
    return pa.concat_tables([january, pa.Table.from_pylist([returner], schema=CONVERSATION_CATEGORIES)])


@pytest.fixture(scope="module")
def data() -> pa.Table:
    """February and March with the special conversations, and nothing at all on Feb 29."""
    months = synthetic_categories(date(2024, 2, 1), 60, 25, 400, seed=2)
    day = pc.cast(months.column("started_at"), pa.timestamp("us")).cast(pa.date32())
    months = months.filter(pc.not_equal(day, pa.scalar(EMPTY_DAY, pa.date32())))
    special = [
        # starts 23:50 on Feb 27 and ends 00:35 on Feb 28: everything counts on Feb 27
        _conversation(
            "night",
            "night-owl",
            "sms",
            _at(MIDNIGHT_DAY, 23, 50),
            duration_seconds=2700.0,
            ended_at=_at(MIDNIGHT_DAY + timedelta(days=1), 0, 35),
            # categorised before the first topic model: no discovered topic (the rollups count it as other)
            discovered_topic_id=None,
            discovered_topic=None,
            discovered_topic_score=None,
        ),
        _conversation("r-feb", "returner", "fax", _at(RETURN_DAY, 10, 0), status="escalated"),
        _conversation(
            "n-feb",
            "newbie",
            "pigeon",
            _at(RETURN_DAY, 11, 0),
            first_response_seconds=None,
            response_seconds=[],
            assistant_messages=0,
            agent_messages=0,
            turns=0,
            messages=4,
            fallback_replies=0,
            intents=[],
            user_messages=4,
            negative_messages=0,
            positive_messages=0,
            sentiment_mean=0.0,
            translated_messages=0,
            # far from every discovered topic
            discovered_topic_id=-1,
            discovered_topic="other",
            discovered_topic_score=0.12,
        ),
    ]
    return pa.concat_tables([months, pa.Table.from_pylist(special, schema=CONVERSATION_CATEGORIES)])


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, history: pa.Table, data: pa.Table) -> ParquetLake:
    """raw_conversations of January to March in a Parquet lake, one file per day."""
    lake = ParquetLake.open(str(tmp_path_factory.mktemp("lake")))
    everything = pa.concat_tables([history, data]).select(RAW_CONVERSATIONS.names)
    days = pc.cast(everything.column("started_at"), pa.timestamp("us")).cast(pa.date32())
    for offset in range(91):
        day = date(2024, 1, 1) + timedelta(days=offset)
        part = everything.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        lake.write("raw_conversations", day.isoformat(), part, RAW_CONVERSATIONS)
    return lake


def _rollups(lake: ParquetLake, data: pa.Table, period: str, starts: list[date]) -> pa.Table:
    users = pa.table({"user_id": pc.unique(data.column("user_id"))})
    con = connect(lake)
    try:
        seen = users_seen_before(con, users, min(starts), history_tables())
    finally:
        con.close()
    return compute_rollups(data, period, starts, seen)


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("day", MIDNIGHT_DAY),
        ("day", RETURN_DAY),
        ("day", EMPTY_DAY),
        ("week", BOUNDARY_WEEK),
        ("week", date(2024, 2, 12)),
        ("month", date(2024, 2, 1)),
        ("month", date(2024, 3, 1)),
    ],
)
def test_rollups_match_the_plain_sql_reference(lake, history, data, period, start):
    rollups = _rollups(lake, data, period, [start])
    expected = reference_rollups(data, pa.concat_tables([history, data]), period, start, period_end(period, start))
    assert_matches(rollups, period, start, expected)
    assert not checks.shares_in_unit_interval(rollups)
    assert not checks.counts_add_up(rollups)


def test_a_backfill_range_gives_the_same_rows_as_one_period_at_a_time(lake, data):
    weeks = [date(2024, 2, 5) + timedelta(weeks=i) for i in range(4)]
    together = _rollups(lake, data, "week", weeks)
    apart = pa.concat_tables([_rollups(lake, data, "week", [w]) for w in weeks])
    assert together.to_pylist() == apart.to_pylist()
    days = [date(2024, 2, 1) + timedelta(days=i) for i in range(29)]
    daily = _rollups(lake, data, "day", days)
    assert daily.filter(pc.equal(daily.column("dimension"), "all")).num_rows == 29
    one_day = _rollups(lake, data, "day", [date(2024, 2, 15)])
    assert daily.filter(pc.equal(daily.column("period_start"), date(2024, 2, 15))).to_pylist() == (one_day.to_pylist())


def test_the_same_bits_whatever_the_order_of_the_rows(lake, data):
    days = [date(2024, 2, 1) + timedelta(days=i) for i in range(29)]
    once = _rollups(lake, data, "day", days)
    shuffled = data.take(pa.array(np.random.default_rng(0).permutation(data.num_rows)))
    in_chunks = pa.Table.from_batches(shuffled.to_batches(max_chunksize=97))
    assert _rollups(lake, in_chunks, "day", days).equals(once)


def test_more_label_pairs_than_conversations(lake, history, data):
    """A topic and a channel of its own for every conversation: the (value, label) pairs are too many
    to count in place, so they are counted by sorting; the rows must be the reference's all the same."""
    labels = pa.array([f"label {i:05d}" for i in range(data.num_rows)])
    many = data
    for name in ("topic", "channel"):
        many = many.set_column(many.schema.get_field_index(name), many.schema.field(name), labels)
    start = date(2024, 2, 1)
    expected = reference_rollups(many, pa.concat_tables([history, many]), "month", start, period_end("month", start))
    assert len(expected) > 1_000
    assert_matches(_rollups(lake, many, "month", [start]), "month", start, expected)


def _row(rollups: pa.Table, start: date, dimension: str, value: str) -> dict | None:
    rows = [
        r
        for r in rollups.to_pylist()
        if r["period_start"] == start and r["dimension"] == dimension and r["value"] == value
    ]
    assert len(rows) <= 1
    return rows[0] if rows else None


def test_a_conversation_across_midnight_counts_on_its_start_day(lake, data):
    daily = _rollups(lake, data, "day", [MIDNIGHT_DAY, MIDNIGHT_DAY + timedelta(days=1)])
    night = _row(daily, MIDNIGHT_DAY, "channel", "sms")
    assert night is not None
    assert (night["conversations"], night["messages"], night["active_users"]) == (1, 9, 1)
    assert night["median_duration_seconds"] == 2700.0
    assert night["median_response_seconds"] == pytest.approx((3.5 + 8.0) / 2)
    assert _row(daily, MIDNIGHT_DAY + timedelta(days=1), "channel", "sms") is None


def test_a_user_back_after_a_month_is_returning_not_new(lake, data, history):
    for period, start in (("day", RETURN_DAY), ("week", date(2024, 2, 12)), ("month", date(2024, 2, 1))):
        rollups = _rollups(lake, data, period, [start])
        back = _row(rollups, start, "channel", "fax")
        assert (back["active_users"], back["new_users"], back["returning_users"]) == (1, 0, 1), period
        newbie = _row(rollups, start, "channel", "pigeon")
        assert (newbie["active_users"], newbie["new_users"], newbie["returning_users"]) == (1, 1, 0)
        # no replies at all: rates over replies are null, not zero
        assert newbie["fallback_rate"] is None and newbie["median_first_response_seconds"] is None
    # in January the same user was new
    january = compute_rollups(history, "month", [date(2024, 1, 1)], None)
    assert _row(january, date(2024, 1, 1), "channel", "fax")["new_users"] == 1


def test_a_day_without_conversations_still_has_its_row(lake, data):
    daily = _rollups(lake, data, "day", [EMPTY_DAY])
    assert daily.num_rows == 1
    row = daily.to_pylist()[0]
    assert (row["dimension"], row["value"], row["conversations"], row["active_users"]) == ("all", "all", 0, 0)
    assert row["resolution_rate"] is None and row["avg_sentiment"] is None and row["top_topics"] == []


def test_the_week_across_the_month_boundary_is_whole_and_adds_up(lake, data):
    days = [BOUNDARY_WEEK + timedelta(days=i) for i in range(7)]
    daily = _rollups(lake, data, "day", days)
    weekly = _rollups(lake, data, "week", [BOUNDARY_WEEK])
    assert not checks.days_complete("week", [BOUNDARY_WEEK], weekly, daily)
    week = _row(weekly, BOUNDARY_WEEK, "all", "all")
    february = [d for d in days if d.month == 2]
    assert 0 < sum(_row(daily, d, "all", "all")["conversations"] for d in february) < week["conversations"]
    # distinct users are not the sum of the days' (users come back within the week)
    assert week["active_users"] < sum(_row(daily, d, "all", "all")["active_users"] for d in days)
    monthly = _rollups(lake, data, "month", [date(2024, 2, 1), date(2024, 3, 1)])
    assert [r["period_start"] for r in monthly.to_pylist() if r["dimension"] == "all"] == [
        date(2024, 2, 1),
        date(2024, 3, 1),
    ]


def test_checks_report_what_is_wrong(lake, data):
    days = [BOUNDARY_WEEK + timedelta(days=i) for i in range(7)]
    daily = _rollups(lake, data, "day", days)
    weekly = _rollups(lake, data, "week", [BOUNDARY_WEEK])
    rows = weekly.to_pylist()
    rows[0]["escalation_rate"] = 1.5
    rows[1]["conversations"] += 1
    broken = pa.Table.from_pylist(rows, schema=weekly.schema)
    assert checks.shares_in_unit_interval(broken) == [f"{BOUNDARY_WEEK} all=all: escalation_rate=1.5"]
    assert any("conversations sums to" in p for p in checks.counts_add_up(broken))
    without_thursday = daily.filter(pc.not_equal(daily.column("period_start"), EMPTY_DAY))
    assert checks.days_complete("week", [BOUNDARY_WEEK], weekly, without_thursday) == [
        f"week {BOUNDARY_WEEK}: daily rollups missing for {EMPTY_DAY}"
    ]


def test_periods_must_be_contiguous_and_known(data):
    with pytest.raises(ValueError, match="contiguous"):
        compute_rollups(data, "week", [date(2024, 2, 5), date(2024, 2, 19)])
    with pytest.raises(ValueError, match="2024-02-06 is not the first day of a week"):
        compute_rollups(data, "week", [date(2024, 2, 6)])
    with pytest.raises(ValueError, match="day, week or month"):
        compute_rollups(data, "year", [date(2024, 1, 1)])
