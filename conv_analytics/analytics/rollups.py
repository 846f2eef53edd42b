"""Daily, ISO-week and calendar-month rollups, each computed from the conversations of its whole window.

Distinct users and percentiles cannot be added up from days, so every period is computed from the
categorised conversations it contains, never from the daily figures. Definitions (one conversation
row of `conversation_categories` is the unit; its messages count on the day it started):

- dimension `all` (value `all`), `channel`, `language` (the conversation's main language), `topic`,
  `intent` (the conversation's `primary_intent`) and `discovered_topic` (`other` where none fits), so
  every conversation has exactly one value per dimension and the counts of a dimension add up to the
  `all` row.
- active_users: distinct users with a conversation in the period (and dimension value).
  new_users: those of them whose first conversation over all history falls in the period;
  returning_users = active_users - new_users.
- avg_turns: mean turns per conversation. Medians and p95 interpolate between the two nearest
  values (DuckDB `quantile_cont`); response times are every reply's latency (`response_seconds`).
- escalation/resolution/abandonment_rate: share of conversations with that status.
- fallback_rate: fallback replies / assistant messages (the enrich step decides what a fallback is).
- translated_share: messages read through their English translation / messages.
- avg_sentiment: mean of `sentiment_mean` over conversations with at least one user message.
  negative_share/positive_share: share of user messages labelled negative/positive.
- top_topics: conversations per topic; top_intents: user messages per intent (every user message's
  intent, not just the primary one); the TOP_N largest, ties by label.
- A period without conversations still gets its `all` row (zero counts, null averages and rates).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timezone
from itertools import pairwise

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics.analytics.grouped import lists, ranked, runs
from conv_analytics.dates import period_end, period_start
from conv_analytics.io.query import quote_identifier, scratch_cursor
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ROLLUP_DIMENSIONS, ROLLUPS

TOP_N = 10
ADDITIVE_COLUMNS = ("conversations", "messages", "user_messages", "assistant_messages", "agent_messages")
RATE_COLUMNS = (
    "escalation_rate",
    "resolution_rate",
    "abandonment_rate",
    "fallback_rate",
    "translated_share",
    "negative_share",
    "positive_share",
)
# dimension -> the conversation column that holds its value (`all`: every conversation has the value all)
DIMENSION_COLUMNS: dict[str, str | None] = {
    "all": None,
    "channel": "channel",
    "language": "language",
    "topic": "topic",
    "intent": "primary_intent",
    "discovered_topic": "discovered_topic",  # conversations with no discovered topic count as other
}
assert tuple(DIMENSION_COLUMNS) == ROLLUP_DIMENSIONS


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def check_contiguous(period: str, starts: Sequence[date]) -> list[date]:
    """The period starts sorted; they must be real starts and leave no gap (a backfill range)."""
    ordered = sorted(set(starts))
    if not ordered:
        raise ValueError("no periods to compute")
    for start in ordered:
        if period_start(period, start) != start:
            raise ValueError(f"{start} is not the first day of a {period}")
    for previous, current in pairwise(ordered):
        if period_end(period, previous) != current:
            raise ValueError(f"{period} periods must be contiguous: {previous} is not followed by {current}")
    return ordered


def users_seen_before(
    con: duckdb.DuckDBPyConnection | None, users: pa.Table, before: date, history: Sequence[str]
) -> pa.Table:
    """The users of `users` (column user_id) with a conversation that started before `before`.

    Reads the lake's history through DuckDB from the first of the `history` views present (the tables
    that record who was seen when, most complete first): only partitions before `before` are scanned
    (hive `date` pruning) and only the window's users are kept (semi-join), so the answer stays small.
    """
    empty = pa.table({"user_id": pa.array([], pa.string())})
    if con is None or users.num_rows == 0:
        return empty
    views = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    view = next((v for v in history if v in views), None)
    if view is None:
        return empty
    con.register("window_users_", users.select(["user_id"]))
    try:
        return con.sql(
            f"""
            SELECT DISTINCT h.user_id FROM {quote_identifier(view)} h
            WHERE h.date < ?::DATE AND h.started_at < ?
              AND h.user_id IN (SELECT user_id FROM window_users_)
            """,
            params=[before, utc_midnight(before)],
        ).to_arrow_table()
    finally:
        con.unregister("window_users_")


# DuckDB's aggregates over one dimension's groups `g`; avg_sentiment is summed as an exact decimal, so
# the result does not depend on the order rows arrive in
METRICS = """
    count(*) AS conversations,
    sum(messages)::BIGINT AS messages,
    sum(user_messages)::BIGINT AS user_messages,
    sum(assistant_messages)::BIGINT AS assistant_messages,
    sum(agent_messages)::BIGINT AS agent_messages,
    count(DISTINCT user_id) AS active_users,
    count(DISTINCT user_id) FILTER (WHERE is_new) AS new_users,
    avg(turns) AS avg_turns,
    quantile_cont(duration_seconds, 0.5) AS median_duration_seconds,
    quantile_cont(first_response_seconds, 0.5) AS median_first_response_seconds,
    quantile_cont(first_response_seconds, 0.95) AS p95_first_response_seconds,
    avg(CASE WHEN status = 'escalated' THEN 1.0 ELSE 0.0 END) AS escalation_rate,
    avg(CASE WHEN status = 'resolved' THEN 1.0 ELSE 0.0 END) AS resolution_rate,
    avg(CASE WHEN status = 'abandoned' THEN 1.0 ELSE 0.0 END) AS abandonment_rate,
    sum(fallback_replies) / nullif(sum(assistant_messages), 0) AS fallback_rate,
    sum(translated_messages) / nullif(sum(messages), 0) AS translated_share,
    avg(sentiment_mean::DECIMAL(38, 18)) FILTER (WHERE user_messages > 0)::DOUBLE AS avg_sentiment,
    sum(negative_messages) / nullif(sum(user_messages), 0) AS negative_share,
    sum(positive_messages) / nullif(sum(user_messages), 0) AS positive_share
"""
RESPONSES = "quantile_cont(r, 0.5) AS median_response_seconds, quantile_cont(r, 0.95) AS p95_response_seconds"
METRIC_INPUTS = (
    "messages",
    "user_messages",
    "assistant_messages",
    "agent_messages",
    "turns",
    "duration_seconds",
    "first_response_seconds",
    "status",
    "fallback_replies",
    "translated_messages",
    "sentiment_mean",
    "negative_messages",
    "positive_messages",
)


def _counted(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `keys` (all in [0, size)) in order and how often each occurs: counted in place
    where `size` is not much larger than the keys (no sort), else sorted."""
    if size > 8 * keys.size + 1024:
        return np.unique(keys, return_counts=True)
    counts = np.bincount(keys, minlength=size)
    distinct = np.flatnonzero(counts)
    return distinct, counts[distinct]


def _numbered(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `keys` (all in [0, size)) in order, and each key's number among them."""
    distinct, _ = _counted(keys, size)
    return distinct, np.searchsorted(distinct, keys)


def _top(groups: np.ndarray, ranks: np.ndarray, names: pa.Array, n: int) -> pa.ListArray:
    """Per group of `n`, its TOP_N labels by count (ties by name) with their counts; rows ranked -1
    (no label) are left out."""
    labelled = ranks >= 0
    width = len(names) or 1
    pairs, counts = _counted(groups[labelled] * width + ranks[labelled], n * width)
    group, label = pairs // width, pairs % width
    order = np.lexsort((label, -counts, group))
    group, label, counts = group[order], label[order], counts[order]
    first, last = runs(group)
    place = np.arange(group.size) - np.repeat(first, last - first + 1)  # a label's place in its group
    top = place < TOP_N
    entries = pa.StructArray.from_arrays(
        [names.take(pa.array(label[top])), pa.array(counts[top], pa.int64())], names=["label", "count"]
    )
    return lists(group[top], entries, n)


def _scattered(groups: pa.Array, values: pa.Array, n: int) -> pa.Array:
    """`values` of the listed groups placed at their group in an array of `n` (null elsewhere)."""
    out = np.zeros(n)
    known = np.zeros(n, dtype=bool)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    at = groups.to_numpy()
    out[at] = values.fill_null(0.0).to_numpy()
    known[at] = valid
    return pa.array(out, mask=~known)


class _Rows:
    """The window's conversations, grouped one dimension at a time."""

    def __init__(
        self,
        conv: pa.Table,
        period: str,
        firsts: np.ndarray,
        periods: np.ndarray,
        users: np.ndarray,
        is_new: np.ndarray,
    ) -> None:
        self.period, self.firsts, self.periods = period, firsts, periods
        self.inputs = (
            conv.select(METRIC_INPUTS)
            .append_column("user_id", pa.array(users))
            .append_column("is_new", pa.array(is_new))
        )
        responses = conv.column("response_seconds")
        self.replies = pc.list_flatten(responses)
        self.reply_of = pc.list_parent_indices(responses).to_numpy()
        intents = conv.column("intents")
        self.intent_of = pc.list_parent_indices(intents).to_numpy()
        self.intent_names, self.intent_ranks = ranked(pc.list_flatten(intents))
        self.topic_names, self.topic_ranks = ranked(conv.column("topic"))

    def dimension(self, dimension: str, names: pa.Array, ranks: np.ndarray) -> pa.Table:
        """The rows of one dimension, by period and value."""
        size = self.firsts.size * len(names)
        keys, groups = _numbered(self.periods * len(names) + ranks, size)
        n = keys.size
        with scratch_cursor() as cursor:
            cursor.register("conv_", self.inputs.append_column("g", pa.array(groups)))
            metrics = cursor.sql(f"SELECT {METRICS} FROM conv_ GROUP BY g ORDER BY g").to_arrow_table()
            cursor.register("replies_", pa.table({"g": groups[self.reply_of], "r": self.replies}))
            replies = cursor.sql(f"SELECT g, {RESPONSES} FROM replies_ GROUP BY g").to_arrow_table()
        active, new = metrics.column("active_users"), metrics.column("new_users")
        columns = {
            "period_start": pa.array(self.firsts[keys // len(names)].astype(np.int32)).cast(pa.date32()),
            "period": pa.array([self.period] * n),
            "dimension": pa.array([dimension] * n),
            "value": names.take(pa.array(keys % len(names))),
            "returning_users": pc.subtract(active, new),
            "top_topics": _top(groups, self.topic_ranks, self.topic_names, n),
            "top_intents": _top(groups[self.intent_of], self.intent_ranks, self.intent_names, n),
        }
        for name in ("median_response_seconds", "p95_response_seconds"):
            columns[name] = _scattered(replies.column("g").combine_chunks(), replies.column(name).combine_chunks(), n)
        return pa.Table.from_arrays(
            [(columns[f.name] if f.name in columns else metrics.column(f.name)).cast(f.type) for f in ROLLUPS],
            schema=ROLLUPS,
        )


def _empty_periods(starts: Sequence[date], period: str) -> pa.Table:
    """The `all` rows of periods without conversations: zero counts, null figures, empty lists."""
    n = len(starts)
    fixed = {"period_start": starts, "period": [period] * n, "dimension": ["all"] * n, "value": ["all"] * n}
    columns = []
    for f in ROLLUPS:
        if f.name in fixed:
            columns.append(pa.array(fixed[f.name], f.type))
        elif pa.types.is_integer(f.type):
            columns.append(pa.array([0] * n, f.type))
        elif pa.types.is_list(f.type):
            columns.append(pa.array([[]] * n, f.type))
        else:
            columns.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(columns, schema=ROLLUPS)


def _values(conv: pa.Table, column: str | None) -> tuple[pa.Array, np.ndarray]:
    """A dimension's values in byte order and each conversation's rank among them (no discovered
    topic: other)."""
    if column is None:
        return pa.array(["all"]), np.zeros(conv.num_rows, dtype=np.int64)
    return ranked(pc.fill_null(conv.column(column), "other") if column == "discovered_topic" else conv.column(column))


def _period_index(started_at: pa.ChunkedArray, period: str, firsts: np.ndarray) -> np.ndarray:
    """Each conversation's period, as its index in `firsts` (the periods' first days, in days since
    1970-01-01): its UTC day, that day's ISO week (from Monday) or calendar month. The conversations
    lie within the periods."""
    day = started_at.cast(pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64)  # from 1970-01-01, a Thursday
    if period == "week":
        day = day - (day + 3) % 7
    elif period == "month":
        month = day.astype("datetime64[D]").astype("datetime64[M]")
        day = month.astype("datetime64[D]").astype(np.int64)
    return np.searchsorted(firsts, day)


def _new_users(users: np.ndarray, period: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per conversation: whether its user, not seen before the range, has their first conversation of
    the range in its period."""
    first = np.full(int(users.max(initial=-1)) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, users[~seen], period[~seen])
    return first[users] == period


def compute_rollups(
    categories: pa.Table,
    period: str,
    starts: Sequence[date],
    seen_before: pa.Table | None = None,
) -> pa.Table:
    """The ROLLUPS rows of the given contiguous periods from their conversations.

    `categories` holds the conversations started in those periods (others are ignored);
    `seen_before` the user ids that had a conversation before the first period (see
    `users_seen_before`), which decides who is new.

    Each dimension's values become integer groups (period, value by name), so DuckDB aggregates over
    integers and NumPy counts the top labels; the metrics are DuckDB's own aggregates (exact sums,
    decimal averages, `quantile_cont`), so the figures do not depend on the order of the rows.
    """
    if period not in ("day", "week", "month"):
        raise ValueError(f"period must be day, week or month, not {period!r}")
    ordered = check_contiguous(period, starts)
    first, end = utc_midnight(ordered[0]), utc_midnight(period_end(period, ordered[-1]))
    started = categories.column("started_at")
    inside = pc.and_(
        pc.greater_equal(started, pa.scalar(first, started.type)), pc.less(started, pa.scalar(end, started.type))
    )
    conv = categories.select(CONVERSATION_CATEGORIES.names)
    if not pc.all(inside).as_py():  # a copy only where some conversations lie outside the periods
        conv = conv.filter(inside)
    firsts = pa.array(ordered, pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64)
    periods = _period_index(conv.column("started_at"), period, firsts)
    users = pc.dictionary_encode(conv.column("user_id").combine_chunks()).indices.to_numpy().astype(np.int64)
    known = seen_before.column("user_id") if seen_before is not None else pa.array([], pa.string())
    seen = pc.is_in(conv.column("user_id"), value_set=known).to_numpy(zero_copy_only=False)
    rows = _Rows(conv, period, firsts, periods, users, _new_users(users, periods, seen))
    parts = [rows.dimension(dimension, *_values(conv, column)) for dimension, column in DIMENSION_COLUMNS.items()]
    empty = np.setdiff1d(np.arange(len(ordered)), periods)
    if empty.size:
        parts.append(_empty_periods([ordered[i] for i in empty], period))
    table = pa.concat_tables(parts)
    order = pc.sort_indices(
        table.append_column("d", pc.index_in(table.column("dimension"), value_set=pa.array(ROLLUP_DIMENSIONS))),
        [("period_start", "ascending"), ("d", "ascending")],
    )
    return table.take(order)
