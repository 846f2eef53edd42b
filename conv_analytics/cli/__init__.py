"""`conv-analytics`: the platform from the command line (demo, query, status, config and the domain commands)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
import dagster as dg

from conv_analytics.config import Config, Setting, SettingError, settings_table_markdown
from conv_analytics.errors import PlatformError, one_line
from conv_analytics.io.lake import ParquetLake
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


def _settings() -> Config:
    """The settings in force, every one of them valid (else one line naming each invalid one, exit code 2)."""
    return Config.from_env().validated()


def _debug() -> bool:
    """Whether `--debug` was given: Dagster's console log and tracebacks are shown."""
    return bool(click.get_current_context().find_root().params.get("debug"))


class _Commands(click.Group):
    """Errors users can fix (settings, stores, sources, translators) end the command with one line naming
    the setting to fix: exit code 2 for an invalid setting, 1 for a failure. `--debug` adds the traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (SettingError, PlatformError, ValueError) as exc:
            details = getattr(exc, "details", "")  # a failed run's step error (runner.RunFailed)
            if ctx.params.get("debug"):
                traceback.print_exc()
                if details:
                    click.echo(f"the failed step's error:\n{details}", err=True)
            setting = isinstance(exc, SettingError) or getattr(exc, "setting_problem", False)
            raise (SettingProblem if setting else click.ClickException)(one_line(exc)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Dagster's console log and the traceback of a failure.")
def main(debug: bool) -> None:
    """Conversation analytics on Dagster: NocoDB in; topics, intents, sentiment and rollups out."""


def _run(config: Config, first: date, last: date) -> None:
    """Materialise the graph for [first, last] with progress, then print what the lake holds."""
    from conv_analytics.cli.progress import ConsoleProgress
    from conv_analytics.instance import instance_for
    from conv_analytics.runner import materialize_days, report_files

    if first < config.start_date:
        raise click.ClickException(
            f"{first} is before the first partition: {Config.start_date.env}={config.start_date}"
        )
    _reach_services(config)
    started = time.perf_counter()
    progress = ConsoleProgress()
    # Dagster's console log only with --debug: a failure's one line is printed by the command group
    log_level = "WARNING" if _debug() else None
    try:
        summary = materialize_days(config, first, last, instance_for(config), progress=progress, log_level=log_level)
    finally:
        progress.close()
    click.echo(f"lake: {config.lake_root}")
    _print_counts(config)
    for path in report_files(config):
        click.echo(f"report: {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f}s ({sum(step.runs for step in summary.steps)} runs)")


def _writable(folder: Path, setting: Setting[object]) -> None:
    """`folder` exists (made if need be) and takes a file; else one line naming the setting to fix."""
    from conv_analytics.io.errors import StoreError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"{folder} cannot be written ({exc.strerror or exc}): fix {setting.env}") from None


def _reach_services(config: Config) -> None:
    """Reach the home, the lake, MongoDB and a required translator before the run: a stopped server is
    one line at once, not a failed step after minutes of work (each raises its one-line error)."""
    from conv_analytics.cli.enrich import configured_translator
    from conv_analytics.io.mongo import MongoResource
    from conv_analytics.resources import configured

    _writable(config.home, Config.home)
    _writable(config.instance_dir, Config.dagster_home if config.dagster_home else Config.home)
    lake = _lake(config).lake()
    if lake.is_local:
        _writable(Path(lake.root), Config.lake_url if config.lake_url else Config.home)
    lake.assets()
    mongo = configured(MongoResource, config, env_var_secrets=False)
    if mongo.enabled:
        store = mongo.store()
        try:
            store.ping()
        finally:
            store.close()
    translator = configured_translator(config)
    if translator.required and translator.engine is not None:
        _ = translator.engine.pairs  # lists the pairs: the server answers, or the command is installed


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
    _run(_settings(), start_date.date(), last)


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

    config = _settings()
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

    con = _lake(_settings()).duckdb()
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
    """Which partitions of each asset are in the lake, and the ones missing between its first and last;
    then what the Dagster instance is doing: each asset's last run, failed and queued runs, backfills."""
    from conv_analytics.cli.deploy import operations
    from conv_analytics.definitions import Platform
    from conv_analytics.instance import instance_for

    config = _settings()
    assets = Platform.build(config).graph.assets
    _print_lake_status(config, assets)
    with instance_for(config) as instance:
        click.echo("\n".join(["", *operations(instance, [key for asset in assets for key in asset.keys])]))


def _print_lake_status(config: Config, assets: list[dg.AssetsDefinition]) -> None:
    lake = _lake(config).lake()
    present = set(lake.assets())
    if not present:
        click.echo(f"the lake at {lake.url} is empty: run `conv-analytics demo` or materialise assets")
        return
    click.echo(f"lake: {lake.url}")
    click.echo(f"{'asset':<28} {'partitions':>10}  {'first':<10}  {'last':<10}  missing")
    lags: list[str] = []
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
            if config.mongodb_uri and (line := _mongo_lag(config, lake, asset, key, keys)):
                lags.append(line)
    if config.mongodb_uri:
        click.echo("MongoDB against the lake: " + ("every mirrored partition agrees" if not lags else ""))
        for line in lags:
            click.echo(f"  {line}")


def _mongo_lag(config: Config, lake: ParquetLake, asset: dg.AssetsDefinition, key: dg.AssetKey, keys: list[str]) -> str:
    """Where MongoDB differs from the lake for one mirrored asset: partitions it lacks or has fewer rows of."""
    from conv_analytics.io.mongo import MongoResource, compare_partitions
    from conv_analytics.io.tables import MONGO_KEY, StoredTable
    from conv_analytics.resources import configured

    metadata = asset.metadata_by_key.get(key, {})
    if MONGO_KEY not in metadata:
        return ""
    partitions = asset.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    start = partitions.time_window_for_partition_key(keys[0]).start
    end = partitions.time_window_for_partition_key(keys[-1]).end
    store = configured(MongoResource, config, env_var_secrets=False).store()  # the user, password and TLS too
    try:
        differ = compare_partitions(lake, store, key.path[-1], StoredTable.of(metadata), keys, start, end)
    finally:
        store.close()
    if not differ:
        return ""
    behind = [d for d in differ if d.mongo < d.lake]
    missing = [d.key for d in differ if d.mongo == 0]
    ahead = [d.key for d in differ if d.mongo > d.lake]
    parts = [
        f"{key.path[-1]}: MongoDB behind the lake in {len(behind)} partition(s), "
        f"{sum(d.lake - d.mongo for d in behind)} row(s)"
    ]
    if missing:
        parts.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if ahead:
        parts.append(f"more documents than the lake in {', '.join(ahead[:5])}" + (" ..." if len(ahead) > 5 else ""))
    return "; ".join(parts) + " (materialise those partitions again)"


@main.command("init")
def init() -> None:
    """Create the Dagster instance of the home (once, under a lock). Run it before Dagster's own CLI
    (`dagster asset materialize`) uses a new DAGSTER_HOME: Dagster creates a fresh instance unlocked."""
    from conv_analytics.instance import prepare_instance_dir

    click.echo(f"Dagster instance ready: {prepare_instance_dir(Config.from_env())}")


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
    from conv_analytics.instance import prepare_instance_dir

    instance = prepare_instance_dir(Config.from_env())
    environment = {**os.environ, Config.dagster_home.env: str(instance)}
    command = [sys.executable, "-m", "dagster", "dev", "-m", "conv_analytics.definitions", "-p", str(port)]
    os.execve(sys.executable, command, environment)


# The domain commands live in their own modules and join the group here.
from conv_analytics.cli.categorize import categorize, train  # noqa: E402
from conv_analytics.cli.deploy import celery_worker  # noqa: E402
from conv_analytics.cli.enrich import enrich  # noqa: E402
from conv_analytics.cli.files import files  # noqa: E402
from conv_analytics.cli.kernels import compile_kernels  # noqa: E402
from conv_analytics.cli.nocodb import nocodb  # noqa: E402
from conv_analytics.cli.report import report  # noqa: E402
from conv_analytics.cli.topics import topics  # noqa: E402

for _command in (report, nocodb, files, train, categorize, enrich, topics, celery_worker, compile_kernels):
    main.add_command(_command)
