"""`conv-analytics report`: one day, ISO week or month as HTML, Markdown or JSON, from the rollups in the lake."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from conv_analytics.config import Config


@click.command("report")
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    required=True,
    help="Grain of the report (weeks are ISO weeks, Monday to Sunday).",
)
@click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Any day of the period (default: the latest complete period in the lake).",
)
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default="html", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="File to write, '-' for standard output (default: <home>/reports/<period>-<start>.<format>).",
)
def report(period: str, day: datetime | None, fmt: str, output: str | None) -> None:
    """Write the report of one period: volumes, users, sentiment, topics and intents with their change,
    response times, channel and language mix (HTML is one self-contained file with SVG charts)."""
    from pathlib import Path

    from conv_analytics.analytics.render import render
    from conv_analytics.analytics.report import (
        ReportError,
        build_report,
        latest_complete,
        load_inputs,
        report_path,
    )
    from conv_analytics.dates import period_start
    from conv_analytics.definitions import Platform
    from conv_analytics.io.resources import lake_resource

    config = Config.from_env()
    tables = Platform.build(config).graph.report_tables
    try:
        lake = lake_resource(config).lake()
        if day is None:
            start = latest_complete(lake, tables, period, datetime.now(timezone.utc).date())
            if start is None:
                raise ReportError(
                    f"no complete {period} in {tables.rollups[period]} at {lake.url}: materialise it "
                    "(or run `conv-analytics demo`) first, or pass --date"
                )
        else:
            start = period_start(period, day.date())
        text = render(build_report(load_inputs(lake, tables, period, start)), fmt)
    except (ReportError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if output == "-":
        sys.stdout.write(text)
        return
    target = Path(output) if output else report_path(config.reports_dir, period, start, fmt)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(str(target))
