"""`conv-analytics`: the platform from the command line (demo, query, status, config and the domain commands)."""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import click
import dagster as dg

from conv_analytics.config import Config, SettingError, settings_table_markdown
from conv_analytics.io.query import quote_identifier
from conv_analytics.io.resources import LakeResource, lake_resource

DEFAULT_DEMO_DAYS = 62  # any 62 consecutive days hold a whole calendar month and several ISO weeks


# beta/preview notices are for developers, not CLI users
for _notice in (dg.BetaWarning, dg.PreviewWarning):
    warnings.filterwarnings("ignore", category=_notice)


class SettingProblem(click.ClickException):
    """A setting with an invalid value: one line naming it, exit code 2 (a usage error)."""

    exit_code = 2


def _lake(config: Config) -> LakeResource:
    return lake_resource(config)


class _Commands(click.Group):
    """Errors users can fix (settings, stores, sources) end the command with one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from conv_analytics.io.errors import StoreError
        from conv_analytics.sources.base import SourceError
        from conv_analytics.translate.engines import TranslatorError

        try:
            return super().invoke(ctx)
        except SettingError as exc:
            raise SettingProblem(str(exc)) from None
        except (StoreError, SourceError, TranslatorError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Conversation analytics on Dagster: NocoDB in; topics, intents, sentiment and rollups out."""


def _run(config: Config, first: date, last: date) -> None:
    """Materialise the graph for [first, last] with progress, then print what the lake holds."""
    from conv_analytics.cli.progress import ConsoleProgress
    from conv_analytics.runner import instance_for, materialize_days, report_files

    if first < config.start_date:
        raise click.ClickException(
            f"{first} is before the first partition: {Config.start_date.env}={config.start_date}"
        )
    started = time.perf_counter()
    progress = ConsoleProgress()
    try:
        summary = materialize_days(config, first, last, instance_for(config), progress=progress, log_level="WARNING")
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    click.echo(f"lake: {config.lake_root}")
    _print_counts(config)
    for path in report_files(config):
        click.echo(f"report: {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f}s ({sum(step.runs for step in summary.steps)} runs)")


DAY = click.DateTime(["%Y-%m-%d"])


def _yesterday() -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def _end_date(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--end-date", type=DAY, default=None, help=f"Last day {what} (default: yesterday, UTC).")


@main.command()
@click.option("--start-date", type=DAY, required=True, help="First day to materialise (UTC).")
@_end_date("to materialise")
def run(start_date: datetime, end_date: datetime | None) -> None:
    """Materialise the whole graph for a range of days from the configured source (files or NocoDB):
    the daily chain, the weeks and months it completes, then the report."""
    last = end_date.date() if end_date else _yesterday()
    if last < start_date.date():
        raise click.BadParameter("must not be before --start-date", param_hint="--end-date")
    _run(Config.from_env(), start_date.date(), last)


@main.command()
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=DEFAULT_DEMO_DAYS,
    show_default=True,
    help="How many days of demo data, ending with --end-date.",
)
@_end_date("of the demo data")
@click.option(
    "--per-day",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="Conversations on an ordinary weekday.",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(days: int, end_date: datetime | None, per_day: int, seed: int) -> None:
    """Generate demo data into the files source, then `run` over it: the whole graph, a summary and the
    report's path."""
    from conv_analytics.sources.demo import write_demo

    config = Config.from_env()
    last = end_date.date() if end_date else _yesterday()
    first = last - timedelta(days=days - 1)
    if first < config.start_date:
        raise click.ClickException(
            f"the demo would start on {first}, before {Config.start_date.env}={config.start_date}"
        )
    demo_data = write_demo(config.source_folder, last, days, per_day=per_day, seed=seed)
    click.echo(
        f"demo data: {demo_data.conversations} conversations, {demo_data.messages} messages and "
        f"{demo_data.malformed} malformed records for {first}..{last} in {demo_data.folder}"
    )
    # Conversations of the last evening run past midnight: the day after holds their last messages.
    _run(config, first, last + timedelta(days=1))


def _print_counts(config: Config) -> None:
    con = _lake(config).duckdb()
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    for view in sorted(views):
        rows = con.execute(f"SELECT count(*) FROM {quote_identifier(view)}").fetchone()[0]
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

    con = _lake(Config.from_env()).duckdb()
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
    """Which partitions of each asset are in the lake, and the ones missing between its first and last."""
    from conv_analytics.definitions import Platform

    config = Config.from_env()
    assets = Platform.build(config).graph.assets
    lake = _lake(config).lake()
    present = set(lake.assets())
    if not present:
        click.echo(f"the lake at {lake.url} is empty: run `conv-analytics demo` or materialise assets")
        return
    click.echo(f"lake: {lake.url}")
    click.echo(f"{'asset':<28} {'partitions':>10}  {'first':<10}  {'last':<10}  missing")
    for asset in assets:
        for key in asset.keys:
            name = key.path[-1]
            partitions = asset.partitions_def
            if name not in present or not isinstance(partitions, dg.TimeWindowPartitionsDefinition):
                continue
            keys = lake.keys(name)
            if not keys:
                continue
            expected = partitions.get_partition_keys_in_range(dg.PartitionKeyRange(keys[0], keys[-1]))
            gaps = sorted(set(expected) - set(keys))
            gap_text = ", ".join(gaps[:5]) + (" ..." if len(gaps) > 5 else "") or "-"
            click.echo(f"{name:<28} {len(keys):>10}  {keys[0]:<10}  {keys[-1]:<10}  {gap_text}")


@main.command("config")
@click.option("--markdown", is_flag=True, help="Print the README table of settings instead of the values.")
def show_config(markdown: bool) -> None:
    """The settings in force (secrets hidden); invalid values are marked, not fatal."""
    if markdown:
        click.echo(settings_table_markdown())
        return
    config = Config.from_env()
    problems = config.problems()
    for setting in Config.settings():
        if setting.env in problems:
            click.echo(f"{setting.env:<34} INVALID: {problems[setting.env]}")
            continue
        raw = config.raw(setting)
        shown = "***" if setting.secret and raw else (raw or "-")
        click.echo(f"{setting.env:<34} {shown}")


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
def ui(port: int) -> None:
    """The Dagster UI and daemon (`dagster dev`) over the same instance and lake as the CLI."""
    import os

    from conv_analytics.runner import prepare_instance_dir

    instance = prepare_instance_dir(Config.from_env())
    environment = {**os.environ, Config.dagster_home.env: str(instance)}
    command = [sys.executable, "-m", "dagster", "dev", "-m", "conv_analytics.definitions", "-p", str(port)]
    os.execve(sys.executable, command, environment)


# The domain commands live in their own modules and join the group here.
from conv_analytics.cli.categorize import categorize, train  # noqa: E402
from conv_analytics.cli.enrich import enrich  # noqa: E402
from conv_analytics.cli.files import files  # noqa: E402
from conv_analytics.cli.nocodb import nocodb  # noqa: E402
from conv_analytics.cli.report import report  # noqa: E402
from conv_analytics.cli.topics import topics  # noqa: E402

for _command in (report, nocodb, files, train, categorize, enrich, topics):
    main.add_command(_command)
