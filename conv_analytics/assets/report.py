"""The analysts' report of the latest complete day, ISO week and month, written as HTML, Markdown and JSON."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from conv_analytics import markdown
from conv_analytics.analytics.render import FORMATS, render, summary_markdown, volume_chart_markdown
from conv_analytics.analytics.report import (
    ReportTables,
    build_report,
    latest_complete,
    load_inputs,
    report_path,
)
from conv_analytics.failures import fails_clearly
from conv_analytics.io.resources import LakeResource
from conv_analytics.partitions import whenever_a_dependency_updates


class ReportsResource(dg.ConfigurableResource):
    """Where reports are written (Config.reports_dir: <home>/reports)."""

    folder: str

    def path(self) -> Path:
        folder = Path(self.folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def report_tables(
    rollups: Mapping[str, dg.AssetsDefinition], categories: dg.AssetsDefinition, topic_model: dg.AssetsDefinition
) -> ReportTables:
    """The tables a report reads, named by the assets that write them."""
    return ReportTables(
        rollups={period: asset.key.path[-1] for period, asset in rollups.items()},
        categories=categories.key.path[-1],
        topic_models=topic_model.key.path[-1],
    )


def build_report_asset(tables: ReportTables, rollups: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    @dg.asset(
        deps=list(rollups),
        automation_condition=whenever_a_dependency_updates(),
        group_name="analytics",
        kinds={"html", "markdown"},
    )
    @fails_clearly
    def analytics_report(
        context: dg.AssetExecutionContext, lake: LakeResource, reports: ReportsResource
    ) -> dg.MaterializeResult:
        """Reports of the latest complete day, week and month in the lake (HTML with charts, Markdown,
        JSON); the weekly summary and chart also show here as metadata."""
        return write_reports(context, lake, reports, tables)

    return analytics_report


def write_reports(
    context: dg.AssetExecutionContext, lake: LakeResource, reports: ReportsResource, tables: ReportTables
) -> dg.MaterializeResult:
    """Write each period's latest complete report; fails when there is none at all."""
    store = lake.lake()
    folder = reports.path()
    today = datetime.now(timezone.utc).date()
    metadata: dict[str, dg.RawMetadataValue] = {"folder": dg.MetadataValue.path(str(folder))}
    shown = None
    for period in ("day", "week", "month"):
        start = latest_complete(store, tables, period, today)
        if start is None:
            context.log.info(f"no complete {period} in {tables.rollups[period]} yet: no {period} report")
            continue
        report = build_report(load_inputs(store, tables, period, start))
        for fmt in FORMATS:
            report_path(folder, period, start, fmt).write_text(render(report, fmt), encoding="utf-8")
        metadata[f"{period}_report"] = dg.MetadataValue.path(str(report_path(folder, period, start, "html")))
        metadata[f"{period}_summary"] = dg.MetadataValue.md(summary_markdown(report))
        if shown is None or period == "week":
            shown = report
    if shown is None:
        raise dg.Failure(
            description=f"no complete day, week or month of rollups in {store.url}: materialise "
            f"{', '.join(tables.rollups.values())} first"
        )
    metadata["summary"] = dg.MetadataValue.md(summary_markdown(shown))
    metadata["chart"] = dg.MetadataValue.md(
        f"Conversations per day, {markdown.escape(shown['title'])}\n\n{volume_chart_markdown(shown)}"
    )
    return dg.MaterializeResult(metadata=metadata)
