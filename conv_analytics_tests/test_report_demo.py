"""Demo data through the whole graph: rollups of a day, an ISO week and a month against plain SQL over the
lake's categorised and enriched data, and the week's HTML report opened in a real headless Chromium.

The demo month is February 2026 (Sun 1 Feb to Sun 1 Mar: four whole ISO weeks, the last one across
the month boundary), plus Mon 2 Mar: the day after the last demo day holds only the after-midnight
messages of the last evening's conversations, so it is a day without conversations.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from conv_analytics.analytics.render import render
from conv_analytics.analytics.report import build_report, load_inputs
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.io.lake import ParquetLake
from conv_analytics.runner import materialize_days
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ENRICHED_MESSAGES, RAW_CONVERSATIONS, ROLLUPS
from conv_analytics.sources.demo import write_demo
from conv_analytics_tests.rollup_reference import assert_matches, period_end, reference_rollups

FIRST, LAST = date(2026, 2, 1), date(2026, 3, 1)
EMPTY_DAY = LAST + timedelta(days=1)
WEEKS = [date(2026, 2, 2) + timedelta(weeks=i) for i in range(4)]
MONTH = date(2026, 2, 1)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The whole graph as `conv-analytics demo` builds it: each stage one single-run backfill over its
    range (the daily assets, the weekly intent and topic models between them, the daily rollups), then the
    weeks and the month wholly inside the days, and the report."""
    config = Config(home=tmp_path_factory.mktemp("demo_month"), start_date=date(2024, 1, 1))
    write_demo(config.source_folder, LAST, (LAST - FIRST).days + 1, per_day=4)
    summary = materialize_days(config, FIRST, EMPTY_DAY)
    weeks = next(step.partitions for step in summary.steps if step.name == "weekly rollups")
    months = next(step.partitions for step in summary.steps if step.name == "monthly rollups")
    assert (weeks, months) == ([w.isoformat() for w in WEEKS], [MONTH.isoformat()])
    return config


def _read(config: Config, asset: str, schema: pa.Schema) -> pa.Table:
    lake = ParquetLake.open(config.lake_root)
    return lake.read(asset, lake.keys(asset), schema)


@pytest.fixture(scope="module")
def categories(demo: Config) -> pa.Table:
    return _read(demo, "conversation_categories", CONVERSATION_CATEGORIES)


@pytest.mark.parametrize(
    ("period", "start", "asset"),
    [
        ("day", date(2026, 2, 10), "daily_rollups"),
        ("day", EMPTY_DAY, "daily_rollups"),
        ("week", date(2026, 2, 23), "weekly_rollups"),  # ends on 1 March
        ("month", MONTH, "monthly_rollups"),
    ],
)
def test_demo_rollups_match_plain_sql_over_the_categorised_data(demo, categories, period, start, asset):
    rollups = ParquetLake.open(demo.lake_root).read(asset, [start.isoformat()], ROLLUPS)
    history = _read(demo, "raw_conversations", RAW_CONVERSATIONS)
    expected = reference_rollups(categories, history, period, start, period_end(period, start))
    assert_matches(rollups, period, start, expected)
    if start != EMPTY_DAY:
        assert len(expected) > 10  # channels, languages, topics and intents all present


def test_demo_message_counts_match_the_enriched_messages_by_conversation_start_day(demo):
    """Messages counted straight from enriched_messages, each on its conversation's start day (UTC),
    equal the rollups' for every day, week and month: midnight-crossing conversations included."""
    lake = ParquetLake.open(demo.lake_root)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("conversations", _read(demo, "raw_conversations", RAW_CONVERSATIONS))
    enriched = lake.read("enriched_messages", lake.keys("enriched_messages"), ENRICHED_MESSAGES)
    con.register("messages", enriched)
    crossing = con.execute(
        """SELECT count(DISTINCT c.conversation_id) FROM conversations c JOIN messages m USING (conversation_id)
           WHERE CAST(m.sent_at AS DATE) > CAST(c.started_at AS DATE)"""
    ).fetchone()[0]
    assert crossing > 0
    for period, asset, trunc in (
        ("day", "daily_rollups", "day"),
        ("week", "weekly_rollups", "week"),
        ("month", "monthly_rollups", "month"),
    ):
        expected = {
            row[0]: row[1:]
            for row in con.execute(
                f"""SELECT CAST(date_trunc('{trunc}', CAST(c.started_at AS DATE)) AS DATE) AS p,
                           count(*), count(*) FILTER (WHERE role = 'user'),
                           count(*) FILTER (WHERE role = 'assistant'), count(*) FILTER (WHERE role = 'agent')
                    FROM messages m JOIN conversations c USING (conversation_id) GROUP BY 1"""
            ).fetchall()
        }
        rows = [r for r in lake.read(asset, lake.keys(asset), ROLLUPS).to_pylist() if r["dimension"] == "all"]
        assert len(rows) == {"day": 30, "week": 4, "month": 1}[period]
        for r in rows:
            got = (r["messages"], r["user_messages"], r["assistant_messages"], r["agent_messages"])
            assert got == expected.get(r["period_start"], (0, 0, 0, 0)), (period, r["period_start"])


def test_demo_day_without_conversations_and_the_checks(demo):
    rows = ParquetLake.open(demo.lake_root).read("daily_rollups", [EMPTY_DAY.isoformat()], ROLLUPS)
    assert rows.to_pylist()[0]["conversations"] == 0 and rows.num_rows == 1
    platform = Platform.build(demo)
    result = dg.materialize(
        platform.graph.assets,
        selection=[platform.graph.rollups["week"].key],
        resources=platform.resources,
        partition_key=WEEKS[-1].isoformat(),
    )
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 3 and all(e.passed for e in evaluations)


def chromium() -> str:
    """Debian's chromium; skipped when absent, except under CI=true where its absence is a failure."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "chromium is not installed (apt-get update && apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def open_in_chromium(report: dict, folder: Path, height: int) -> tuple[str, bytes]:
    """(the DOM Chromium builds from the report's HTML page, a 1200 x `height` PNG screenshot of it)."""
    browser = chromium()
    page = folder / "week.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    shot = folder / "week.png"
    subprocess.run(
        [*common, f"--window-size=1200,{height}", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = shot.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", image[16:24]) == (1200, height) and len(image) > 50_000  # a blank page is a few kB
    print(f"\nscreenshot of the week report: {shot}")
    return dom, image


@pytest.mark.browser
def test_the_demo_week_report_opens_in_chromium_with_its_charts_drawn(demo, tmp_path):
    tables = Platform.build(demo).graph.report_tables
    report = build_report(load_inputs(ParquetLake.open(demo.lake_root), tables, "week", date(2026, 2, 18)))
    dom, _ = open_in_chromium(report, tmp_path, 3600)
    # the DOM as Chromium parsed it: every chart is an SVG element with its bars, lines and labels
    charts = re.findall(r'<svg class="chart" data-chart="([a-z_]+)"(.*?)</svg>', dom, flags=re.S)
    assert [name for name, _ in charts] == [
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
    drawn = dict(charts)
    assert drawn["volume"].count('class="bar"') == 7 and 'class="series"' in drawn["volume"]
    assert drawn["trend"].count('class="bar"') == 3  # the weeks since the demo data starts
    assert drawn["sentiment"].count('class="series"') == 3
    assert drawn["top_topics"].count('class="bar"') == len(report["top_topics"]) > 1
    assert drawn["discovered_topics"].count('class="bar"') == min(len(report["discovered_topics"]), 12) > 1
    assert drawn["response_times"].count('class="bar"') == 10
    assert "no data" not in "".join(drawn.values())
