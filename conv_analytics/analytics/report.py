"""The analysts' report of one day, ISO week or month: the figures, read from the rollups in the lake.

`build_report` turns rollup rows into one plain dict (the JSON format, and what the HTML and
Markdown renderers draw), so every format shows the same numbers.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics.dates import period_end, period_start
from conv_analytics.errors import PlatformError
from conv_analytics.io.lake import ParquetLake
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ROLLUPS, TOPIC_MODELS

OTHER = "other"  # conversations no discovered topic fits


@dataclass(frozen=True)
class ReportTables:
    """The lake tables a report reads, by asset name: the rollups of each period and the categories."""

    rollups: Mapping[str, str]  # day | week | month -> table
    categories: str
    topic_models: str  # the weekly versions of the discovered topics (their example conversations)


TREND_PERIODS = {"day": 14, "week": 12, "month": 12}
TOP_ROWS = 10
# (column, label, kind): kind decides formatting and how a change is expressed
KPIS = (
    ("conversations", "Conversations", "count"),
    ("messages", "Messages", "count"),
    ("active_users", "Active users", "count"),
    ("new_users", "New users", "count"),
    ("returning_users", "Returning users", "count"),
    ("avg_turns", "Turns per conversation", "number"),
    ("median_duration_seconds", "Median duration", "seconds"),
    ("median_first_response_seconds", "Median first response", "seconds"),
    ("p95_first_response_seconds", "p95 first response", "seconds"),
    ("median_response_seconds", "Median response", "seconds"),
    ("p95_response_seconds", "p95 response", "seconds"),
    ("resolution_rate", "Resolved", "share"),
    ("escalation_rate", "Escalated", "share"),
    ("abandonment_rate", "Abandoned", "share"),
    ("fallback_rate", "Fallback replies", "share"),
    ("translated_share", "Messages translated to English", "share"),
    ("avg_sentiment", "Average sentiment", "score"),
    ("negative_share", "Negative user messages", "share"),
    ("positive_share", "Positive user messages", "share"),
)
SERIES_COLUMNS = (
    "conversations",
    "messages",
    "active_users",
    "new_users",
    "avg_sentiment",
    "negative_share",
    "positive_share",
    "median_first_response_seconds",
)
BREAKDOWN_COLUMNS = (
    "conversations",
    "active_users",
    "resolution_rate",
    "escalation_rate",
    "avg_sentiment",
    "median_first_response_seconds",
)
# upper edges (seconds) of the response-time buckets; the last bucket is open
RESPONSE_BUCKETS = (
    (2, "< 2 s"),
    (5, "2-5 s"),
    (10, "5-10 s"),
    (30, "10-30 s"),
    (60, "30-60 s"),
    (120, "1-2 min"),
    (300, "2-5 min"),
    (900, "5-15 min"),
    (3600, "15-60 min"),
    (None, "1 h or more"),
)


class ReportError(PlatformError):
    """The rollups a report needs are not in the lake (the message says what to materialise)."""


@dataclass(frozen=True)
class ReportInputs:
    """What a report is drawn from: rollup rows of the period's grain over the trend window (the
    period itself included), the daily rollups of its days, and its reply latencies if known."""

    period: str
    start: date
    rollups: pa.Table
    days: pa.Table | None = None
    response_seconds: list[float] | None = None
    source: str = ""
    table: str = "rollups"  # the table the rows came from, for messages
    topic_examples: Mapping[str, str] | None = None  # discovered topic label -> one example (redacted)


def previous_start(period: str, start: date) -> date:
    return period_start(period, start - timedelta(days=1))


def trend_starts(period: str, start: date) -> list[date]:
    """The starts of the trend window, oldest first, ending with `start`."""
    starts = [start]
    for _ in range(TREND_PERIODS[period] - 1):
        starts.append(previous_start(period, starts[-1]))
    return starts[::-1]


def period_days(period: str, start: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((period_end(period, start) - start).days)]


def period_title(period: str, start: date) -> str:
    last = period_end(period, start) - timedelta(days=1)
    if period == "day":
        return f"{start.isoformat()} ({start:%A})"
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"ISO week {year}-W{week:02d} ({start.isoformat()} to {last.isoformat()})"
    return f"{start:%B %Y} ({start.isoformat()} to {last.isoformat()})"


def latest_complete(lake: ParquetLake, tables: ReportTables, period: str, today: date) -> date | None:
    """The latest period whose rollup is in the lake and which has ended before `today` (UTC)."""
    starts = [date.fromisoformat(k) for k in lake.keys(tables.rollups[period])]
    complete = [s for s in starts if period_end(period, s) <= today]
    return max(complete) if complete else None


def _read_present(lake: ParquetLake, asset: str, keys: list[str], schema: pa.Schema) -> pa.Table:
    """The partitions among `keys` that exist (a trend may start before the data does)."""
    present = set(lake.keys(asset))
    return lake.read(asset, [k for k in keys if k in present], schema)


def load_inputs(lake: ParquetLake, tables: ReportTables, period: str, day: date) -> ReportInputs:
    """Read what the report of the period containing `day` needs; clear error when it is missing."""
    if period not in tables.rollups:
        raise ValueError(f"period must be day, week or month, not {period!r}")
    start = period_start(period, day)
    asset = tables.rollups[period]
    if not lake.exists(asset, start.isoformat()):
        raise ReportError(
            f"no {asset} for {start.isoformat()} in {lake.url}: materialise {asset} for partition "
            f"{start.isoformat()} first"
        )
    keys = [s.isoformat() for s in trend_starts(period, start)]
    rollups = _read_present(lake, asset, keys, ROLLUPS)
    days_keys = [d.isoformat() for d in period_days(period, start)]
    days = _read_present(lake, tables.rollups["day"], days_keys, ROLLUPS) if period != "day" else None
    categories = _read_present(lake, tables.categories, days_keys, CONVERSATION_CATEGORIES)
    latencies = pc.list_flatten(categories.column("response_seconds")).drop_null().to_pylist()
    examples = topic_examples(lake, tables.topic_models, period_end(period, start))
    return ReportInputs(period, start, rollups, days, latencies, source=lake.url, table=asset, topic_examples=examples)


def topic_examples(lake: ParquetLake, table: str, before: date) -> dict[str, str]:
    """One example conversation per discovered topic, from the latest model version of a week that began
    before `before` (the examples are the texts nearest each topic's centre, redacted when fitted)."""
    from conv_analytics.categorize.topics import TopicModel

    keys = [k for k in lake.keys(table) if k < before.isoformat()]
    if not keys:
        return {}
    versions = lake.read(table, keys[-1:], TOPIC_MODELS, columns=["model"]).column("model").drop_null()
    if not len(versions):
        return {}
    model = TopicModel.from_bytes(versions[0].as_py())
    return {t.label: t.examples[0] for t in model.shown_topics() if t.examples}


def report_path(folder: Path, period: str, start: date, fmt: str) -> Path:
    return folder / f"{period}-{start.isoformat()}.{fmt}"


def _rows(table: pa.Table | None) -> list[dict]:
    return table.to_pylist() if table is not None else []


def _change(kind: str, value: float | None, previous: float | None) -> dict:
    """Absolute delta always; relative change too for counts and times (not for shares/scores)."""
    if value is None or previous is None:
        return {"delta": None, "relative": None}
    relative = (value - previous) / previous if kind in ("count", "number", "seconds") and previous else None
    return {"delta": value - previous, "relative": relative}


def response_histogram(latencies: list[float]) -> list[dict]:
    edges = [edge for edge, _ in RESPONSE_BUCKETS if edge is not None]
    counts = [0] * len(RESPONSE_BUCKETS)
    for seconds in latencies:
        counts[bisect.bisect_right(edges, seconds)] += 1
    return [{"label": label, "count": n} for (_, label), n in zip(RESPONSE_BUCKETS, counts, strict=True)]


def _dimension_rows(rows: list[dict], start: date, dimension: str) -> dict[str, dict]:
    return {r["value"]: r for r in rows if r["period_start"] == start and r["dimension"] == dimension}


def _ranking(current: dict[str, dict], previous: dict[str, dict], total: int) -> list[dict]:
    ranked = sorted(current.values(), key=lambda r: (-r["conversations"], r["value"]))[:TOP_ROWS]
    out = []
    for row in ranked:
        before = previous.get(row["value"], {}).get("conversations", 0)
        out.append(
            {
                "label": row["value"],
                "share": row["conversations"] / total if total else None,
                "previous": before,
                **_change("count", row["conversations"], before),
                **{c: row[c] for c in BREAKDOWN_COLUMNS},
            }
        )
    return out


def _mix(current: dict[str, dict], total: int) -> list[dict]:
    ranked = sorted(current.values(), key=lambda r: (-r["conversations"], r["value"]))
    return [
        {"label": r["value"], "conversations": r["conversations"], "share": r["conversations"] / total}
        for r in ranked
        if total
    ]


def _language_mix(current: dict[str, dict], total: int) -> list[dict]:
    """The language mix with what differs by language: sentiment, its top topic, how much was translated."""
    rows = _mix(current, total)
    for row in rows:
        figures = current[row["label"]]
        top = figures["top_topics"][0]["label"] if figures["top_topics"] else None
        row.update(avg_sentiment=figures["avg_sentiment"], top_topic=top, translated_share=figures["translated_share"])
    return rows


def _discovered_topics(
    rows: list[dict], start: date, before_start: date, total: int, examples: Mapping[str, str]
) -> dict:
    """What people talk about: each discovered topic's share, change and an example; emerging topics are
    new or more than doubled since the previous period; conversations no topic fits are `other`."""
    current = _dimension_rows(rows, start, "discovered_topic")
    before = _dimension_rows(rows, before_start, "discovered_topic")
    topics = []
    for row in sorted(current.values(), key=lambda r: (-r["conversations"], r["value"])):
        if row["value"] == OTHER:
            continue
        count, previous = row["conversations"], before.get(row["value"], {}).get("conversations", 0)
        topics.append(
            {
                "label": row["value"],
                "conversations": count,
                "share": count / total if total else None,
                "previous": previous,
                **_change("count", count, previous),
                "emerging": previous == 0 or count > 2 * previous,
                "example": examples.get(row["value"]),
            }
        )
    other = current.get(OTHER, {}).get("conversations", 0)
    return {
        "discovered_topics": topics,
        "other_conversations": other,
        "other_share": other / total if total else None,
    }


def _series(rows: list[dict], starts: list[date]) -> list[dict]:
    alls = {r["period_start"]: r for r in rows if r["dimension"] == "all"}
    series = []
    for start in starts:
        row = alls.get(start)
        series.append({"period_start": start.isoformat(), **{c: (row[c] if row else None) for c in SERIES_COLUMNS}})
    return series


def build_report(inputs: ReportInputs, generated_at: datetime | None = None) -> dict:
    """Every figure the report shows, as plain JSON-able values."""
    period, start = inputs.period, inputs.start
    rows = _rows(inputs.rollups)
    current = next((r for r in rows if r["period_start"] == start and r["dimension"] == "all"), None)
    if current is None:
        raise ReportError(f"the {inputs.table} rows have no `all` row for {start.isoformat()}")
    before_start = previous_start(period, start)
    previous = next((r for r in rows if r["period_start"] == before_start and r["dimension"] == "all"), None)
    kpis = []
    for column, label, kind in KPIS:
        value = current[column]
        before = previous[column] if previous else None
        kpis.append(
            {
                "name": column,
                "label": label,
                "kind": kind,
                "value": value,
                "previous": before,
                **_change(kind, value, before),
            }
        )
    total = current["conversations"]
    dims = {d: _dimension_rows(rows, start, d) for d in ("channel", "language", "topic", "intent")}
    before_dims = {d: _dimension_rows(rows, before_start, d) for d in ("topic", "intent")}
    trend = _series(rows, trend_starts(period, start))
    days = _series(_rows(inputs.days), period_days(period, start)) if period != "day" else trend
    latencies = inputs.response_seconds
    return {
        "period": period,
        "period_start": start.isoformat(),
        "period_end": (period_end(period, start) - timedelta(days=1)).isoformat(),
        "previous_period_start": before_start.isoformat(),
        "has_previous": previous is not None,
        "title": period_title(period, start),
        "generated_at": (generated_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "source": inputs.source,
        "kpis": kpis,
        "trend": trend,
        "days": days,
        "top_topics": _ranking(dims["topic"], before_dims["topic"], total),
        "top_intents": _ranking(dims["intent"], before_dims["intent"], total),
        "top_user_intents": current["top_intents"],
        "channels": _mix(dims["channel"], total),
        "languages": _language_mix(dims["language"], total),
        **_discovered_topics(rows, start, before_start, total, inputs.topic_examples or {}),
        "response_times": {
            "median_first_response_seconds": current["median_first_response_seconds"],
            "p95_first_response_seconds": current["p95_first_response_seconds"],
            "median_response_seconds": current["median_response_seconds"],
            "p95_response_seconds": current["p95_response_seconds"],
            "replies": len(latencies) if latencies is not None else None,
            "histogram": response_histogram(latencies) if latencies is not None else None,
        },
    }
