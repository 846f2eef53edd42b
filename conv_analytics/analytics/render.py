"""The report as self-contained HTML (inline CSS and SVG), Markdown and JSON, from `build_report`."""

from __future__ import annotations

import json
from datetime import date
from html import escape

from conv_analytics import markdown
from conv_analytics.analytics import charts

FORMATS = ("html", "md", "json")
SUMMARY_KPIS = (
    "conversations",
    "active_users",
    "new_users",
    "resolution_rate",
    "escalation_rate",
    "fallback_rate",
    "median_first_response_seconds",
    "avg_sentiment",
)
# a rise of these is bad news (coloured red); the volumes are neither, but more use reads as good
LOWER_IS_BETTER = frozenset(
    {
        "median_duration_seconds",
        "median_first_response_seconds",
        "p95_first_response_seconds",
        "median_response_seconds",
        "p95_response_seconds",
        "escalation_rate",
        "abandonment_rate",
        "fallback_rate",
        "negative_share",
    }
)
DEFINITIONS = (
    "Conversations and their messages count on the day the conversation started (UTC). "
    "Active users had a conversation in the period; new users had their first one ever in it. "
    "Weekly and monthly figures are computed from all conversations of the period, not added up "
    "from days. The intent breakdown uses each conversation's primary intent. Shares of negative "
    "and positive sentiment are over user messages; changes of shares are in percentage points."
)
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f7fa;color:#1f2a37}
header,main,footer{max-width:1080px;margin:0 auto;padding:16px 24px}
h1{font-size:1.6rem;margin:8px 0}h2{font-size:1.2rem;margin:0 0 8px}
.meta,footer{color:#5b6675;font-size:.85rem}
section{background:#fff;border:1px solid #e1e5eb;border-radius:8px;padding:16px;margin:16px 0}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px}
.kpi{border:1px solid #e1e5eb;border-radius:6px;padding:10px}
.kpi .label{font-size:.8rem;color:#5b6675}.kpi .value{font-size:1.4rem;font-weight:600}
.change{font-size:.8rem;color:#5b6675}.better{color:#2f7d4f}.worse{color:#b03a2e}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:8px}
th,td{text-align:right;padding:4px 8px;border-bottom:1px solid #eef1f5}
th:first-child,td:first-child,th.text,td.text{text-align:left}
svg.chart{max-width:100%;height:auto;display:block;margin:8px 0}
svg .grid{stroke:#e6e9ef}svg .tick,svg .legend,svg .value{font-size:11px;fill:#4a5563}
svg .note{fill:#8a94a6}svg .chart-title{font-size:13px;font-weight:600;fill:#1f2a37}
"""


def fmt_value(kind: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "score":
        return f"{value:+.3f}"
    if kind == "seconds":
        if value < 60:
            return f"{value:.1f} s"
        if value < 3600:
            return f"{value / 60:.1f} min"
        return f"{value / 3600:.1f} h"
    return f"{value:.2f}"


def fmt_change(kind: str, item: dict) -> str:
    """Relative change for counts and times, percentage points for shares, plain delta for scores."""
    delta, relative, previous = item.get("delta"), item.get("relative"), item.get("previous")
    if delta is None:
        return "n/a"
    if kind == "share":
        return f"{delta * 100:+.1f} pp"
    if kind == "score":
        return f"{delta:+.3f}"
    if relative is not None:
        return f"{relative:+.1%}"
    if not previous and delta:
        return "new"
    return "±0"


def _day_label(iso: str, period: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day:%a %d}" if period == "week" else f"{day:%d}" if period == "month" else f"{day:%m-%d}"


def _trend_label(iso: str, period: str) -> str:
    day = date.fromisoformat(iso)
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"W{week:02d}"
    return f"{day:%b %y}" if period == "month" else f"{day:%m-%d}"


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def chart_svgs(report: dict) -> dict[str, str]:
    """Every chart of the report by name, in reading order."""
    period = report["period"]
    noun = period  # "last 12 weeks"
    trend = report["trend"]
    trend_labels = [_trend_label(p["period_start"], period) for p in trend]
    svgs = {}
    if period != "day":
        days = report["days"]
        svgs["volume"] = charts.bars_and_line(
            "volume",
            "Conversations and active users by day",
            [_day_label(d["period_start"], period) for d in days],
            [d["conversations"] for d in days],
            [d["active_users"] for d in days],
            "conversations",
            "active users",
        )
    svgs["trend"] = charts.bars_and_line(
        "trend",
        f"Conversations and active users, last {len(trend)} {noun}s",
        trend_labels,
        [p["conversations"] for p in trend],
        [p["active_users"] for p in trend],
        "conversations",
        "active users",
    )
    svgs["sentiment"] = charts.lines(
        "sentiment",
        f"Sentiment, last {len(trend)} {noun}s",
        trend_labels,
        [
            ("average sentiment", [p["avg_sentiment"] for p in trend]),
            ("negative share", [p["negative_share"] for p in trend]),
            ("positive share", [p["positive_share"] for p in trend]),
        ],
        (-1.0, 1.0),
        lambda v: f"{v:g}",
    )
    for key, title in (("top_topics", "Top topics"), ("top_intents", "Top primary intents")):
        svgs[key] = charts.horizontal_bars(
            key,
            f"{title} (conversations, change against the previous {noun})",
            [(t["label"], t["conversations"], fmt_change("count", t)) for t in report[key]],
        )
    svgs["discovered_topics"] = charts.horizontal_bars(
        "discovered_topics",
        f"Discovered topics (conversations, change against the previous {noun})",
        [(t["label"], t["conversations"], fmt_change("count", t)) for t in report["discovered_topics"][:TOP_TOPICS]],
    )
    histogram = report["response_times"]["histogram"]
    if histogram is not None:
        svgs["response_times"] = charts.columns(
            "response_times",
            "Reply latency distribution (every assistant or agent reply)",
            [b["label"] for b in histogram],
            [b["count"] for b in histogram],
        )
    svgs["channels"] = charts.share_bar(
        "channels", "Channel mix", [(c["label"], c["share"]) for c in report["channels"]]
    )
    svgs["languages"] = charts.share_bar(
        "languages", "Language mix", [(c["label"], c["share"]) for c in report["languages"]]
    )
    return svgs


def _kpi_cards(report: dict) -> str:
    cards = []
    for k in report["kpis"]:
        change = fmt_change(k["kind"], k)
        delta = (k["delta"] or 0) * (-1 if k["name"] in LOWER_IS_BETTER else 1)
        direction = "better" if delta > 0 else "worse" if delta < 0 else ""
        cards.append(
            f'<div class="kpi" data-kpi="{k["name"]}"><div class="label">{escape(k["label"])}</div>'
            f'<div class="value">{escape(fmt_value(k["kind"], k["value"]))}</div>'
            f'<div class="change {direction}">{escape(change)} vs previous '
            f"({escape(fmt_value(k['kind'], k['previous']))})</div></div>"
        )
    return "".join(cards)


def _ranking_table(items: list[dict], name: str) -> str:
    head = (
        f"<tr><th>{escape(name)}</th><th>Conversations</th><th>Share</th><th>Change</th>"
        "<th>Resolved</th><th>Escalated</th><th>Sentiment</th><th>Median first response</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{escape(t['label'])}</td><td>{t['conversations']:,}</td>"
        f"<td>{fmt_value('share', t['share'])}</td><td>{escape(fmt_change('count', t))}</td>"
        f"<td>{fmt_value('share', t['resolution_rate'])}</td>"
        f"<td>{fmt_value('share', t['escalation_rate'])}</td>"
        f"<td>{fmt_value('score', t['avg_sentiment'])}</td>"
        f"<td>{fmt_value('seconds', t['median_first_response_seconds'])}</td></tr>"
        for t in items
    )
    return f"<table>{head}{rows}</table>"


def _mix_table(items: list[dict], name: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(c['label'])}</td><td>{c['conversations']:,}</td>"
        f"<td>{fmt_value('share', c['share'])}</td></tr>"
        for c in items
    )
    return f"<table><tr><th>{escape(name)}</th><th>Conversations</th><th>Share</th></tr>{rows}</table>"


LANGUAGE_COLUMNS = ("Language", "Conversations", "Share", "Avg sentiment", "Top topic", "Translated")


def _language_cells(row: dict) -> list[str]:
    return [
        row["label"],
        fmt_value("count", row["conversations"]),
        fmt_value("share", row["share"]),
        fmt_value("score", row["avg_sentiment"]),
        row["top_topic"] or "—",
        fmt_value("share", row["translated_share"]),
    ]


def _language_table(items: list[dict]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in LANGUAGE_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _language_cells(r)) + "</tr>" for r in items)
    return f"<table><tr>{head}</tr>{rows}</table>"


TOP_TOPICS = 12  # discovered topics drawn and listed; the rest are counted in a closing line
EXAMPLE_CHARS = 280


def _example(text: str | None) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= EXAMPLE_CHARS else flat[: EXAMPLE_CHARS - 1] + "…"


def _discovered_rows(report: dict) -> list[list[str]]:
    """Label (emerging marked), conversations, share, change and an example per discovered topic."""
    return [
        [
            t["label"] + (" (emerging)" if t["emerging"] else ""),
            fmt_value("count", t["conversations"]),
            fmt_value("share", t["share"]),
            fmt_change("count", t),
            _example(t["example"]),
        ]
        for t in report["discovered_topics"][:TOP_TOPICS]
    ]


def _discovered_summary(report: dict) -> str:
    topics = report["discovered_topics"]
    emerging = [t["label"] for t in topics if t["emerging"]]
    rest = len(topics) - TOP_TOPICS
    parts = [
        f"{len(topics)} discovered topics; {fmt_value('share', report['other_share'])} of conversations "
        f"({fmt_value('count', report['other_conversations'])}) fit none of them (other)."
    ]
    if emerging:
        parts.append(f"Emerging (new, or more than doubled): {', '.join(emerging)}.")
    if rest > 0:
        parts.append(f"{rest} smaller topics are not listed.")
    return " ".join(parts)


DISCOVERED_COLUMNS = ("Topic", "Conversations", "Share", "Change", "Example (redacted)")


def _discovered_table(report: dict) -> str:
    """The discovered topics as a table; the example column reads left to right."""
    head = "".join(f"<th>{c}</th>" for c in DISCOVERED_COLUMNS[:-1]) + f'<th class="text">{DISCOVERED_COLUMNS[-1]}</th>'
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in row[:-1])
        + f'<td class="text">{escape(row[-1])}</td></tr>'
        for row in _discovered_rows(report)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def render_html(report: dict) -> str:
    """One file that opens anywhere offline: inline CSS, inline SVG charts, no scripts."""
    svgs = chart_svgs(report)
    times = report["response_times"]
    time_rows = "".join(
        f"<tr><td>{label}</td><td>{fmt_value('seconds', times[key])}</td></tr>"
        for key, label in (
            ("median_first_response_seconds", "Median first response"),
            ("p95_first_response_seconds", "p95 first response"),
            ("median_response_seconds", "Median reply latency"),
            ("p95_response_seconds", "p95 reply latency"),
        )
    )
    volume = svgs.get("volume", "")
    sections = [
        f'<section><h2>Summary</h2><div class="kpis">{_kpi_cards(report)}</div></section>',
        f"<section><h2>Volume and active users</h2>{volume}{svgs['trend']}</section>",
        f"<section><h2>Sentiment trend</h2>{svgs['sentiment']}</section>",
        f"<section><h2>What people talk about</h2><p>{escape(_discovered_summary(report))}</p>"
        f"{svgs['discovered_topics']}{_discovered_table(report)}</section>",
        f"<section><h2>Top topics</h2>{svgs['top_topics']}{_ranking_table(report['top_topics'], 'Topic')}</section>",
        f"<section><h2>Top intents</h2>{svgs['top_intents']}"
        f"{_ranking_table(report['top_intents'], 'Primary intent')}</section>",
        f"<section><h2>Response times</h2>{svgs.get('response_times', '')}"
        f"<table><tr><th>Measure</th><th>Value</th></tr>{time_rows}</table></section>",
        f"<section><h2>Channels and languages</h2>{svgs['channels']}"
        f"{_mix_table(report['channels'], 'Channel')}{svgs['languages']}"
        f"{_language_table(report['languages'])}</section>",
    ]
    title = f"Conversations: {report['title']}"
    previous = "" if report["has_previous"] else " No rollup of the previous period: changes are n/a."
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">Generated {escape(report["generated_at"])}'
        f" from {escape(report['source'] or 'the rollups')}. Changes compare with the previous "
        f"{report['period']} (from {escape(report['previous_period_start'])}).{previous}</p></header>"
        f"<main>{''.join(sections)}</main><footer>{escape(DEFINITIONS)}</footer></body></html>\n"
    )


# what starts emphasis, code, links or strikethrough, or ends a table cell, inside a table row
def summary_markdown(report: dict, names: tuple[str, ...] = SUMMARY_KPIS) -> str:
    """The headline figures with their change (the Dagster UI shows this as metadata)."""
    rows = [
        [k["label"], fmt_value(k["kind"], k["value"]), fmt_value(k["kind"], k["previous"]), fmt_change(k["kind"], k)]
        for k in report["kpis"]
        if k["name"] in names
    ]
    noun = report["period"]
    table = markdown.table(["Metric", f"This {noun}", f"Previous {noun}", "Change"], rows)
    top = ", ".join(f"{markdown.escape(t['label'])} ({t['conversations']:,})" for t in report["top_topics"][:3])
    return f"**{markdown.escape(report['title'])}**\n\n{table}\n\nTop topics: {top or 'none'}"


def volume_chart_markdown(report: dict) -> str:
    """Conversations per day (per period for a day report) as text bars in a code block."""
    period = report["period"]
    points = report["days"] if period != "day" else report["trend"]
    label = _day_label if period != "day" else _trend_label
    rows = [
        (
            label(p["period_start"], period if period != "day" else "day"),
            p["conversations"],
            "" if p["conversations"] is None else f"{p['conversations']:,} conv, {p['active_users']:,} users",
        )
        for p in points
    ]
    return "```\n" + charts.text_bars(rows) + "\n```"


def render_markdown(report: dict) -> str:
    period = noun = report["period"]
    parts = [
        f"# Conversations: {markdown.escape(report['title'])}",
        f"Generated {report['generated_at']} from {markdown.escape(report['source'] or 'the rollups')}; "
        f"changes compare with the previous {noun} (from {report['previous_period_start']}).",
        "## Summary",
        markdown.table(
            ["Metric", f"This {noun}", f"Previous {noun}", "Change"],
            [
                [
                    k["label"],
                    fmt_value(k["kind"], k["value"]),
                    fmt_value(k["kind"], k["previous"]),
                    fmt_change(k["kind"], k),
                ]
                for k in report["kpis"]
            ],
        ),
        "## Conversations by day" if period != "day" else "## Conversations, last days",
        volume_chart_markdown(report),
        f"## Trend by {noun}",
        markdown.table(
            [noun.capitalize(), "Conversations", "Active users", "New users", "Avg sentiment", "Negative", "Positive"],
            [
                [
                    p["period_start"],
                    fmt_value("count", p["conversations"]),
                    fmt_value("count", p["active_users"]),
                    fmt_value("count", p["new_users"]),
                    fmt_value("score", p["avg_sentiment"]),
                    fmt_value("share", p["negative_share"]),
                    fmt_value("share", p["positive_share"]),
                ]
                for p in report["trend"]
            ],
        ),
    ]
    for key, name in (("top_topics", "Topic"), ("top_intents", "Primary intent")):
        parts += [
            f"## Top {'topics' if key == 'top_topics' else 'intents'}",
            markdown.table(
                [name, "Conversations", "Share", "Change", "Resolved", "Escalated", "Sentiment"],
                [
                    [
                        t["label"],
                        fmt_value("count", t["conversations"]),
                        fmt_value("share", t["share"]),
                        fmt_change("count", t),
                        fmt_value("share", t["resolution_rate"]),
                        fmt_value("share", t["escalation_rate"]),
                        fmt_value("score", t["avg_sentiment"]),
                    ]
                    for t in report[key]
                ],
            ),
        ]
    times = report["response_times"]
    parts += [
        "## Response times",
        markdown.table(
            ["Measure", "Value"],
            [
                ["Median first response", fmt_value("seconds", times["median_first_response_seconds"])],
                ["p95 first response", fmt_value("seconds", times["p95_first_response_seconds"])],
                ["Median reply latency", fmt_value("seconds", times["median_response_seconds"])],
                ["p95 reply latency", fmt_value("seconds", times["p95_response_seconds"])],
            ],
        ),
    ]
    if times["histogram"] is not None:
        parts.append(
            "```\n"
            + charts.text_bars([(b["label"], b["count"], f"{b['count']:,}") for b in times["histogram"]])
            + "\n```"
        )
    parts += [
        "## Channel mix",
        markdown.table(
            ["Channel", "Conversations", "Share"],
            [
                [c["label"], fmt_value("count", c["conversations"]), fmt_value("share", c["share"])]
                for c in report["channels"]
            ],
        ),
        "## Language mix",
        markdown.table(list(LANGUAGE_COLUMNS), [_language_cells(r) for r in report["languages"]]),
        "## What people talk about",
        markdown.escape(_discovered_summary(report)),
        markdown.table(list(DISCOVERED_COLUMNS), _discovered_rows(report)),
    ]
    parts.append(f"_{DEFINITIONS}_")
    return "\n\n".join(parts) + "\n"


def render(report: dict, fmt: str) -> str:
    if fmt == "html":
        return render_html(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "json":
        return render_json(report)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
