"""The report in its three formats, the Dagster assets end to end over a lake, and `conv-analytics report`."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from conv_analytics.analytics.render import chart_svgs, render, render_markdown
from conv_analytics.analytics.report import (
    ReportError,
    ReportInputs,
    build_report,
    load_inputs,
    response_histogram,
)
from conv_analytics.analytics.synthetic import synthetic_categories
from conv_analytics.assets.report import ReportsResource
from conv_analytics.cli import main
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.manager import LakeIOManager
from conv_analytics.io.resources import LakeResource
from conv_analytics.schemas import CONVERSATION_CATEGORIES, RAW_CONVERSATIONS, ROLLUPS
from conv_analytics_tests.platform_support import asset_graph

GRAPH = asset_graph()
# the categories come from the lake as the test wrote them: an upstream spec, not the asset itself, that
# declares the same storage (the IO manager reads an input by its upstream's StoredTable metadata)
CATEGORIES = dg.AssetSpec(
    GRAPH.categories.key,
    partitions_def=GRAPH.partitions.daily,
    metadata=GRAPH.categories.specs_by_key[GRAPH.categories.key].metadata,
)

FIRST, DAYS = date(2024, 1, 22), 42  # Mon 22 Jan .. Sun 3 Mar 2024: six ISO weeks, all of February
WEEK = date(2024, 2, 26)  # crosses into March


def write_categories(lake: ParquetLake, table: pa.Table, first: date, days: int) -> None:
    """conversation_categories and raw_conversations, one partition per day (empty days included)."""
    day_of = pc.cast(table.column("started_at"), pa.timestamp("us")).cast(pa.date32())
    for offset in range(days):
        day = first + timedelta(days=offset)
        part = table.filter(pc.equal(day_of, pa.scalar(day, pa.date32())))
        lake.write("conversation_categories", day.isoformat(), part, CONVERSATION_CATEGORIES)
        lake.write("raw_conversations", day.isoformat(), part.select(RAW_CONVERSATIONS.names), RAW_CONVERSATIONS)


def materialise_rollups(root: str, reports: Path, last: date) -> dict[str, dg.ExecuteInProcessResult]:
    """daily (one single-run backfill), weekly and monthly rollups, then the report, through Dagster."""
    lake = LakeResource(root=root)
    resources = {
        "lake": lake,
        "io_manager": LakeIOManager(lake=lake),
        "reports": ReportsResource(folder=str(reports)),
    }
    assets = [CATEGORIES, *GRAPH.rollups.values(), GRAPH.report]
    first_week = FIRST - timedelta(days=FIRST.weekday())
    last_week = last - timedelta(days=last.weekday() + 7 * (last.weekday() != 6))
    runs = {
        GRAPH.rollups["day"].key: (FIRST, last),
        GRAPH.rollups["week"].key: (first_week, last_week),
        GRAPH.rollups["month"].key: (date(2024, 2, 1), date(2024, 2, 1)),
    }
    results = {}
    for asset, (start, end) in runs.items():
        tags = {
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        }
        results[asset.to_user_string()] = dg.materialize(assets, selection=[asset], resources=resources, tags=tags)
    results[GRAPH.report.key.to_user_string()] = dg.materialize(
        assets, selection=[GRAPH.report.key], resources=resources
    )
    return results


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    lake = ParquetLake.open(str(home / "lake"))
    write_categories(lake, synthetic_categories(FIRST, DAYS, 30, 250, seed=11), FIRST, DAYS)
    return home


@pytest.fixture(scope="module")
def runs(home: Path) -> dict[str, dg.ExecuteInProcessResult]:
    return materialise_rollups(str(home / "lake"), home / "reports", FIRST + timedelta(days=DAYS - 1))


def test_the_assets_write_every_period_and_their_checks_pass(home, runs):
    lake = ParquetLake.open(str(home / "lake"))
    assert len(lake.keys("daily_rollups")) == DAYS
    assert lake.keys("weekly_rollups") == [(FIRST + timedelta(weeks=i)).isoformat() for i in range(6)]
    assert lake.keys("monthly_rollups") == ["2024-02-01"]
    for asset in ("daily_rollups", "weekly_rollups", "monthly_rollups"):
        evaluations = runs[asset].get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} == {"shares_in_unit_interval", "counts_add_up", "no_missing_day"}
        assert all(e.passed for e in evaluations), asset
    week = lake.read("weekly_rollups", [WEEK.isoformat()], ROLLUPS)
    assert set(week.column("period").to_pylist()) == {"week"}
    dimensions = {"all", "channel", "language", "topic", "intent", "discovered_topic"}
    assert set(week.column("dimension").to_pylist()) == dimensions


def test_a_week_with_a_missing_day_fails_clearly(home, runs):
    lake = LakeResource(root=str(home / "lake"))
    assets = [CATEGORIES, GRAPH.rollups["day"], GRAPH.rollups["week"]]
    result = dg.materialize(
        assets,
        selection=[GRAPH.rollups["week"].key],
        resources={"lake": lake, "io_manager": LakeIOManager(lake=lake)},
        partition_key="2024-03-04",
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "has no data for partition(s) 2024-03-04" in message and "materialise" in message


def test_the_report_asset_writes_three_formats_and_shows_a_summary(home, runs):
    materialisation = runs["analytics_report"].asset_materializations_for_node("analytics_report")[0]
    metadata = materialisation.metadata
    assert "ISO week 2024-W09" in metadata["summary"].value  # the latest complete week
    assert "| Conversations |" in metadata["summary"].value
    assert "█" in metadata["chart"].value
    names = sorted(p.name for p in (home / "reports").iterdir())
    assert names == sorted(
        f"{period}-{start}.{fmt}"
        for period, start in (("day", "2024-03-03"), ("week", "2024-02-26"), ("month", "2024-02-01"))
        for fmt in ("html", "md", "json")
    )


@pytest.fixture(scope="module")
def week_report(home, runs) -> dict:
    lake = ParquetLake.open(str(home / "lake"))
    return build_report(load_inputs(lake, GRAPH.report_tables, "week", WEEK + timedelta(days=3)))


def test_the_report_shows_the_rollup_figures_and_their_change(home, week_report):
    lake = ParquetLake.open(str(home / "lake"))
    rows = lake.read("weekly_rollups", [WEEK.isoformat(), (WEEK - timedelta(weeks=1)).isoformat()], ROLLUPS)
    alls = {r["period_start"]: r for r in rows.to_pylist() if r["dimension"] == "all"}
    now, before = alls[WEEK], alls[WEEK - timedelta(weeks=1)]
    kpis = {k["name"]: k for k in week_report["kpis"]}
    assert kpis["conversations"]["value"] == now["conversations"]
    assert kpis["conversations"]["previous"] == before["conversations"]
    assert kpis["conversations"]["relative"] == pytest.approx(now["conversations"] / before["conversations"] - 1)
    assert kpis["resolution_rate"]["delta"] == pytest.approx(now["resolution_rate"] - before["resolution_rate"])
    assert [d["period_start"] for d in week_report["days"]] == [
        (WEEK + timedelta(days=i)).isoformat() for i in range(7)
    ]
    assert sum(d["conversations"] for d in week_report["days"]) == now["conversations"]
    assert sum(t["conversations"] for t in week_report["top_topics"]) <= now["conversations"]
    assert abs(sum(c["share"] for c in week_report["channels"]) - 1) < 1e-9
    histogram = week_report["response_times"]["histogram"]
    assert sum(b["count"] for b in histogram) == week_report["response_times"]["replies"] > 0
    trend = week_report["trend"]
    assert len(trend) == 12 and trend[-1]["period_start"] == WEEK.isoformat()
    assert trend[0]["conversations"] is None  # before the data starts: a gap, not a zero


def test_html_is_self_contained_with_every_chart(week_report):
    html = render(week_report, "html")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|src=|@import|url\(", html)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    names = re.findall(r'<svg class="chart" data-chart="([a-z_]+)"', html)
    assert names == [
        "volume",
        "trend",
        "sentiment",
        "discovered_topics",
        "top_topics",
        "top_intents",
        "response_times",
        "channels",
        "languages",
    ]
    assert html.count('class="bar"') > 30
    assert 'data-kpi="p95_first_response_seconds"' in html


def test_markdown_and_json_carry_the_same_figures(week_report):
    markdown = render_markdown(week_report)
    conversations = next(k for k in week_report["kpis"] if k["name"] == "conversations")["value"]
    assert f"| Conversations | {conversations:,} |" in markdown
    assert "## Top topics" in markdown and "## Channel mix" in markdown and "```" in markdown
    assert "## What people talk about" in markdown
    decoded = json.loads(render(week_report, "json"))
    assert decoded == json.loads(json.dumps(week_report))
    assert decoded["period"] == "week" and decoded["period_start"] == WEEK.isoformat()


def test_an_empty_period_renders_without_charts_breaking():
    empty = ROLLUPS.empty_table().to_pylist()
    row = {name: None for name in ROLLUPS.names}
    row.update(period_start=WEEK, period="week", dimension="all", value="all", top_topics=[], top_intents=[])
    row.update(
        {
            c: 0
            for c in (
                "conversations",
                "messages",
                "user_messages",
                "assistant_messages",
                "agent_messages",
                "active_users",
                "new_users",
                "returning_users",
            )
        }
    )
    report = build_report(
        ReportInputs("week", WEEK, pa.Table.from_pylist([*empty, row], schema=ROLLUPS), ROLLUPS.empty_table(), [])
    )
    svgs = chart_svgs(report)
    assert "no data" in svgs["top_topics"] and "no data" in svgs["response_times"]
    assert "no data" in svgs["discovered_topics"] and report["discovered_topics"] == []
    assert "n/a" in render(report, "md")


def test_response_histogram_buckets():
    counts = [b["count"] for b in response_histogram([0.5, 2.0, 4.9, 59.0, 60.0, 4000.0])]
    assert counts == [1, 2, 0, 0, 1, 1, 0, 0, 0, 1]


def test_the_cli_writes_a_report_and_explains_what_is_missing(home, runs, monkeypatch, tmp_path):
    monkeypatch.setenv("CONV_ANALYTICS_HOME", str(home))
    monkeypatch.delenv("CONV_ANALYTICS_LAKE_URL", raising=False)
    monkeypatch.delenv("S3_BUCKET", raising=False)
    runner = CliRunner()
    out = tmp_path / "w.md"
    result = runner.invoke(
        main, ["report", "--period", "week", "--date", "2024-02-28", "--format", "md", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Conversations: ISO week 2024-W09")
    result = runner.invoke(main, ["report", "--period", "month", "--format", "json", "--output", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["period_start"] == "2024-02-01"
    result = runner.invoke(main, ["report", "--period", "day", "--date", "2024-02-10"])
    assert result.exit_code == 0 and result.output.strip() == str(home / "reports" / "day-2024-02-10.html")
    result = runner.invoke(main, ["report", "--period", "week", "--date", "2024-06-05"])
    assert result.exit_code == 1
    assert "no weekly_rollups for 2024-06-03" in result.output and "materialise weekly_rollups" in result.output


def test_a_missing_period_is_a_clear_error(home, runs):
    with pytest.raises(ReportError, match="materialise monthly_rollups for partition 2024-03-01"):
        load_inputs(ParquetLake.open(str(home / "lake")), GRAPH.report_tables, "month", date(2024, 3, 15))
