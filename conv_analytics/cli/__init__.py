"""`conv-analytics`: the platform from the command line (demo, query, status, config and the domain commands)."""

from __future__ import annotations

import json
import sys
import time
import warnings
from datetime import date, datetime, timedelta, timezone

import click

from conv_analytics.config import Config, settings_table_markdown
from conv_analytics.io.resources import LakeResource

DEFAULT_DEMO_DAYS = 62  # any 62 consecutive days hold a whole calendar month and several ISO weeks


warnings.filterwarnings("ignore", module="dagster")  # beta/preview notices are for developers, not CLI users


def _config() -> Config:
    try:
        return Config.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _lake(config: Config) -> LakeResource:
    return LakeResource(root=config.lake_root, s3_endpoint_url=config.s3_endpoint_url, aws_region=config.aws_region)


class _Commands(click.Group):
    """Errors users can fix (settings, stores, sources) end the command with one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from conv_analytics.io.errors import StoreError
        from conv_analytics.sources.base import SourceError

        try:
            return super().invoke(ctx)
        except (StoreError, SourceError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Conversation analytics on Dagster: NocoDB in; topics, intents, sentiment and rollups out."""


@main.command()
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=DEFAULT_DEMO_DAYS,
    show_default=True,
    help="How many days of demo data, ending with --end-date.",
)
@click.option(
    "--end-date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Last day of the demo data (default: yesterday, UTC).",
)
@click.option(
    "--per-day",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="Conversations on an ordinary weekday.",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(days: int, end_date: datetime | None, per_day: int, seed: int) -> None:
    """Generate demo data, materialise the whole graph and print a summary and the report's path."""
    from conv_analytics.runner import instance_for, materialize_days, report_files
    from conv_analytics.sources.demo import write_demo

    config = _config()
    last = end_date.date() if end_date else datetime.now(timezone.utc).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    if first < config.start_date:
        raise click.ClickException(
            f"the demo would start on {first}, before CONV_ANALYTICS_START_DATE={config.start_date}"
        )
    started = time.perf_counter()
    demo_data = write_demo(config.source_folder, last, days, per_day=per_day, seed=seed)
    click.echo(
        f"demo data: {demo_data.conversations} conversations, {demo_data.messages} messages and "
        f"{demo_data.malformed} malformed records for {first}..{last} in {demo_data.folder}"
    )
    # Conversations of the last evening run past midnight: the day after holds their last messages.
    try:
        summary = materialize_days(
            config, first, last + timedelta(days=1), instance_for(config), progress=click.echo, log_level="WARNING"
        )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"lake: {config.lake_root}")
    _print_counts(config)
    for path in report_files(config):
        click.echo(f"report: {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f}s ({len(summary.steps)} runs)")


def _print_counts(config: Config) -> None:
    con = _lake(config).duckdb()
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    for view in sorted(views):
        rows = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        click.echo(f"  {view:<28} {rows:>10,} rows")


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--max-rows", type=int, default=50, show_default=True, help="Rows shown in table format.")
def query(sql: str, fmt: str, max_rows: int) -> None:
    """Run SQL with DuckDB over the lake; each asset is a view (raw_messages, daily_rollups, ...)."""
    import duckdb

    con = _lake(_config()).duckdb()
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise click.ClickException(f"query failed: {exc}") from None
    if relation is None:
        return
    if fmt == "table":
        relation.show(max_rows=max_rows, max_width=200)
    elif fmt == "csv":
        relation.to_df().to_csv(sys.stdout, index=False)
    else:
        for row in relation.to_arrow_table().to_pylist():
            click.echo(json.dumps(row, default=str, ensure_ascii=False))


@main.command()
def status() -> None:
    """Which partitions of each asset are in the lake, and the days missing between them."""
    lake = _lake(_config()).lake()
    assets = lake.assets()
    if not assets:
        click.echo(f"the lake at {lake.url} is empty: run `conv-analytics demo` or materialise assets")
        return
    click.echo(f"lake: {lake.url}")
    click.echo(f"{'asset':<28} {'partitions':>10}  {'first':<10}  {'last':<10}  gaps")
    for asset in assets:
        keys = lake.keys(asset)
        if not keys:
            continue
        present = [date.fromisoformat(k) for k in keys]
        gaps = []
        if asset not in ("weekly_rollups", "monthly_rollups"):  # daily assets: every day in between
            expected = {present[0] + timedelta(days=i) for i in range((present[-1] - present[0]).days + 1)}
            gaps = sorted(expected - set(present))
        gap_text = ", ".join(d.isoformat() for d in gaps[:5]) + (" ..." if len(gaps) > 5 else "") or "-"
        click.echo(f"{asset:<28} {len(keys):>10}  {keys[0]:<10}  {keys[-1]:<10}  {gap_text}")


@main.command("config")
@click.option("--markdown", is_flag=True, help="Print the README table of settings instead of the values.")
def show_config(markdown: bool) -> None:
    """The settings in force (secrets hidden)."""
    if markdown:
        click.echo(settings_table_markdown())
        return
    for name, value in vars(_config()).items():
        hidden = name in ("nocodb_api_token", "mongodb_uri") and value
        click.echo(f"{name:<28} {'***' if hidden else value}")


# The domain commands live in their own modules and join the group here.
from conv_analytics.cli.categorize import categorize, train  # noqa: E402
from conv_analytics.cli.nocodb import nocodb  # noqa: E402
from conv_analytics.cli.report import report  # noqa: E402

for _command in (report, nocodb, train, categorize):
    main.add_command(_command)
