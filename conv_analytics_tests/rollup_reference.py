"""An independent, deliberately plain computation of every rollup metric, for the rollup tests.

One SQL statement per metric, grouped by the dimension's column, over the conversations of the
period; new users from each user's first conversation over the whole history. It shares no code
with conv_analytics.analytics.rollups, so agreement means the definitions hold.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone

import duckdb
import pyarrow as pa

DIMENSIONS = {
    "all": "'all'",
    "channel": "channel",
    "language": "language",
    "topic": "topic",
    "intent": "primary_intent",
    "discovered_topic": "coalesce(discovered_topic, 'other')",  # no model yet: other
}
COUNTS = {
    "conversations": "count(*)",
    "messages": "sum(messages)",
    "user_messages": "sum(user_messages)",
    "assistant_messages": "sum(assistant_messages)",
    "agent_messages": "sum(agent_messages)",
    "active_users": "count(DISTINCT user_id)",
}
RATIOS = {
    "avg_turns": "avg(turns)",
    "median_duration_seconds": "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds)",
    "median_first_response_seconds": "percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds)",
    "p95_first_response_seconds": "percentile_cont(0.95) WITHIN GROUP (ORDER BY first_response_seconds)",
    "escalation_rate": "count(*) FILTER (WHERE status = 'escalated') / count(*)",
    "resolution_rate": "count(*) FILTER (WHERE status = 'resolved') / count(*)",
    "abandonment_rate": "count(*) FILTER (WHERE status = 'abandoned') / count(*)",
    "fallback_rate": "CASE WHEN sum(assistant_messages) > 0 THEN sum(fallback_replies) / sum(assistant_messages) END",
    "avg_sentiment": "avg(CASE WHEN user_messages > 0 THEN sentiment_mean END)",
    "negative_share": "CASE WHEN sum(user_messages) > 0 THEN sum(negative_messages) / sum(user_messages) END",
    "positive_share": "CASE WHEN sum(user_messages) > 0 THEN sum(positive_messages) / sum(user_messages) END",
    "translated_share": "CASE WHEN sum(messages) > 0 THEN sum(translated_messages) / sum(messages) END",
}
FLOAT_METRICS = (*RATIOS, "median_response_seconds", "p95_response_seconds")
INT_METRICS = (*COUNTS, "new_users", "returning_users")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def reference_rollups(
    categories: pa.Table, history: pa.Table, period: str, start: date, end: date
) -> dict[tuple[str, str], dict]:
    """{(dimension, value): metrics} of the period [start, end); history: user_id, started_at of
    every conversation before (and possibly during) the period."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("categories", categories)
    con.register("history", history.select(["user_id", "started_at"]))
    con.execute(
        "CREATE TABLE window_ AS SELECT * FROM categories WHERE started_at >= ? AND started_at < ?",
        [_midnight(start), _midnight(end)],
    )
    con.execute(
        """CREATE TABLE first_seen AS SELECT user_id, min(started_at) AS first_at FROM (
               SELECT user_id, started_at FROM history UNION ALL SELECT user_id, started_at FROM categories
           ) GROUP BY user_id"""
    )
    out: dict[tuple[str, str], dict] = {}
    for dimension, column in DIMENSIONS.items():

        def grouped(expression: str, source: str = "window_", column: str = column) -> dict[str, object]:
            rows = con.execute(f"SELECT {column}, {expression} FROM {source} GROUP BY 1").fetchall()
            return dict(rows)

        values = grouped("count(*)")
        for value in values:
            out[(dimension, value)] = {"period_start": start, "period": period}
        for name, expression in {**COUNTS, **RATIOS}.items():
            for value, result in grouped(expression).items():
                out[(dimension, value)][name] = result
        new = dict(
            con.execute(
                f"""SELECT {column}, count(DISTINCT w.user_id) FROM window_ w JOIN first_seen f USING (user_id)
                    WHERE f.first_at >= ? AND f.first_at < ? GROUP BY 1""",
                [_midnight(start), _midnight(end)],
            ).fetchall()
        )
        replies = f"(SELECT {column} AS v, unnest(response_seconds) AS r FROM window_)"
        medians = dict(
            con.execute(
                f"SELECT v, percentile_cont(0.5) WITHIN GROUP (ORDER BY r) FROM {replies} GROUP BY 1"
            ).fetchall()
        )
        p95s = dict(
            con.execute(
                f"SELECT v, percentile_cont(0.95) WITHIN GROUP (ORDER BY r) FROM {replies} GROUP BY 1"
            ).fetchall()
        )
        topics = con.execute(f"SELECT {column}, topic, count(*) FROM window_ GROUP BY 1, 2").fetchall()
        intents = con.execute(
            f"""SELECT v, i, count(*) FROM (SELECT {column} AS v, unnest(intents) AS i FROM window_)
                WHERE i IS NOT NULL GROUP BY 1, 2"""
        ).fetchall()
        for value in values:
            row = out[(dimension, value)]
            row["new_users"] = new.get(value, 0)
            row["returning_users"] = row["active_users"] - row["new_users"]
            row["median_response_seconds"] = medians.get(value)
            row["p95_response_seconds"] = p95s.get(value)
            row["top_topics"] = _top([(label, n) for v, label, n in topics if v == value])
            row["top_intents"] = _top([(label, n) for v, label, n in intents if v == value])
    if not out:
        out[("all", "all")] = {"period_start": start, "period": period, "top_topics": [], "top_intents": []}
        out[("all", "all")].update(dict.fromkeys(INT_METRICS, 0))
        out[("all", "all")].update(dict.fromkeys(FLOAT_METRICS))
    return out


def _top(pairs: list[tuple[str, int]]) -> list[dict]:
    ranked = sorted(pairs, key=lambda p: (-p[1], p[0]))[:10]
    return [{"label": label, "count": n} for label, n in ranked]


def assert_matches(rollups: pa.Table, period: str, start: date, expected: dict) -> None:
    """The rollup rows of one period equal the reference: counts exactly, the rest within 1e-9."""
    rows = {
        (r["dimension"], r["value"]): r
        for r in rollups.to_pylist()
        if r["period_start"] == start and r["period"] == period
    }
    assert set(rows) == set(expected), f"{period} {start}: rows differ: {set(rows) ^ set(expected)}"
    for key, want in expected.items():
        got = rows[key]
        for name in INT_METRICS:
            assert got[name] == want[name], f"{period} {start} {key} {name}: {got[name]} != {want[name]}"
        for name in FLOAT_METRICS:
            a, b = got[name], want[name]
            if b is None:
                assert a is None, f"{period} {start} {key} {name}: {a} should be null"
            else:
                assert a is not None and math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-9), (
                    f"{period} {start} {key} {name}: {a} != {b}"
                )
        assert got["top_topics"] == want["top_topics"], f"{period} {start} {key} top_topics"
        assert got["top_intents"] == want["top_intents"], f"{period} {start} {key} top_intents"


def period_end(period: str, start: date) -> date:
    """Written out again here (not imported) so the tests do not lean on the code under test."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)
