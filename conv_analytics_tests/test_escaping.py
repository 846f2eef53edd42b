"""Hostile names and values: a `'`, `"` or `\\` in the home, lake URL or S3 prefix reaches DuckDB as a
value, never as SQL text; channel names and topic labels with markup are shown as text in the Markdown
report and in Dagster's metadata previews."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from conv_analytics import markdown
from conv_analytics.analytics.synthetic import synthetic_categories
from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.query import connect
from conv_analytics.schemas import CONVERSATION_CATEGORIES
from conv_analytics_tests.storage_support import s3_prefix  # noqa: F401 (a fixture)
from conv_analytics_tests.test_report import materialise_rollups, write_categories

HOSTILE_FOLDER = 'it\'s "quoted" \\ [x]*'
CHANNEL = "<script>alert(1)</script>|x"
TOPIC = "*_[]()`~ <b>bold</b>"
FIRST, DAYS = date(2024, 1, 22), 42  # the days test_report's rollups runs materialise
PLAIN = {"web": CHANNEL}
SCHEMA = pa.schema([("n", pa.int64())])


def write_two_days(lake: ParquetLake) -> None:
    lake.write("raw_messages", "2026-10-01", pa.table({"n": [1, 2]}), SCHEMA)
    lake.write("raw_messages", "2026-10-02", pa.table({"n": [3]}), SCHEMA)


def assert_views_read(lake: ParquetLake) -> None:
    rows = connect(lake).sql("SELECT n, CAST(date AS VARCHAR) FROM raw_messages ORDER BY n").fetchall()
    assert rows == [(1, "2026-10-01"), (2, "2026-10-01"), (3, "2026-10-02")]


def test_a_local_lake_in_a_hostile_folder_is_queried_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / HOSTILE_FOLDER / "home"
    lake = ParquetLake.open(str(home / "lake"))
    write_two_days(lake)
    assert_views_read(lake)
    runner = CliRunner()
    for env in (
        {Config.home.env: str(home)},
        {Config.lake_url.env: str(home / "lake"), Config.home.env: str(tmp_path)},
    ):
        queried = runner.invoke(main, ["query", "SELECT count(*) AS n FROM raw_messages", "--format", "json"], env=env)
        assert queried.exit_code == 0, queried.output
        assert json.loads(queried.stdout) == {"n": 3}
    status = runner.invoke(main, ["status"], env={Config.home.env: str(home)})
    assert status.exit_code == 0 and "raw_messages" in status.stdout, status.output
    # a '?' is the one character Dagster's SQLite instance cannot take: one line, exit code 2
    status = runner.invoke(main, ["status"], env={Config.home.env: str(tmp_path / "why?")})
    assert status.exit_code == 2 and Config.home.env in status.stderr and status.stderr.count("\n") == 1


@pytest.mark.integration
def test_an_s3_prefix_with_quotes_is_read_through_duckdb(s3_prefix) -> None:  # noqa: F811
    target, prefix = s3_prefix
    # Not here: a backslash (SeaweedFS lists no key holding one) and glob characters (DuckDB reads
    # S3 through s3fs, which globs every path it is given)
    lake = target.lake(f'{prefix}/it\'s "quoted" ok')
    write_two_days(lake)
    assert lake.keys("raw_messages") == ["2026-10-01", "2026-10-02"]
    assert_views_read(lake)


def test_markdown_escape_shows_markup_as_text() -> None:
    assert markdown.escape(CHANNEL) == "&lt;script&gt;alert(1)&lt;/script&gt;\\|x"
    assert markdown.escape(TOPIC) == "\\*\\_\\[\\]()\\`\\~ &lt;b&gt;bold&lt;/b&gt;"
    table = markdown.table(["a|b"], [[CHANNEL], ["line\nbreak"]])
    assert table.splitlines() == [
        "| a\\|b |",
        "|---|",
        "| &lt;script&gt;alert(1)&lt;/script&gt;\\|x |",
        "| line break |",
    ]
    assert markdown.bullets([TOPIC]) == f"- {markdown.escape(TOPIC)}" and markdown.bullets([]) == "_none_"


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dg.ExecuteInProcessResult]]:
    """The rollups and report of test_report's days, with a hostile channel and topic, in a hostile folder."""
    home = tmp_path_factory.mktemp("escaping") / HOSTILE_FOLDER
    categories = synthetic_categories(FIRST, DAYS, 30, 250, seed=11)
    channel = pc.if_else(pc.equal(categories.column("channel"), "web"), CHANNEL, categories.column("channel"))
    topic = pc.if_else(pc.equal(categories.column("topic"), "billing"), TOPIC, categories.column("topic"))
    for name, column in (("channel", channel), ("topic", topic)):
        categories = categories.set_column(categories.schema.get_field_index(name), name, column)
    write_categories(ParquetLake.open(str(home / "lake")), categories.cast(CONVERSATION_CATEGORIES), FIRST, DAYS)
    return home, materialise_rollups(str(home / "lake"), home / "reports", FIRST + timedelta(days=DAYS - 1))


def markdown_metadata(result: dg.ExecuteInProcessResult) -> list[str]:
    texts = []
    for event in result.get_asset_materialization_events() + result.get_asset_check_evaluations():
        metadata = getattr(event, "materialization", event).metadata
        texts += [value.value for value in metadata.values() if isinstance(value, dg.MarkdownMetadataValue)]
    return texts


def test_reports_and_metadata_previews_escape_channel_names_and_topic_labels(hostile_runs) -> None:
    home, runs = hostile_runs
    assert all(result.success for result in runs.values())
    report = next((home / "reports").glob("*week*.md")).read_text(encoding="utf-8")
    assert markdown.escape(CHANNEL) in report and markdown.escape(TOPIC) in report
    assert "<script>" not in report and "<b>" not in report and "|x" not in report.replace("\\|x", "")
    html = next((home / "reports").glob("*week*.html")).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<b>bold" not in html
    previews = [text for result in runs.values() for text in markdown_metadata(result)]
    shown = "\n".join(previews)
    assert markdown.escape(CHANNEL) in shown and markdown.escape(TOPIC) in shown  # rollup previews, summaries
    assert CHANNEL not in shown and TOPIC not in shown
