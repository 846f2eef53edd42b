"""Materialise the graph over a range of days in process: what `conv-analytics run`, `demo` and the tests run.

Each partitions definition gets one single-run backfill over its range (the same runs the Dagster UI's
backfill launches); daily assets go first, then the weeks and months they complete, then the report.
A logger follows each run's steps, so the command line can show progress while a run works.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from conv_analytics.config import Config
from conv_analytics.dates import complete_periods, period_start
from conv_analytics.definitions import Platform
from conv_analytics.partitions import range_tags

RUN_JOB = "conv_analytics_run"


@dataclass
class StepResult:
    name: str
    partitions: list[str]
    seconds: float


@dataclass
class RunSummary:
    steps: list[StepResult] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """One run of the plan: a name for people, the assets it materialises and its partition keys."""

    name: str
    selection: list[dg.AssetKey]
    keys: list[str]  # empty: an unpartitioned asset


class Progress:
    """What a caller is told while the plan runs; the defaults tell nothing."""

    def planned(self, stages: Sequence[Stage], steps: int) -> None: ...
    def step_started(self, stage: Stage, step: str) -> None: ...
    def step_finished(self, stage: Stage, step: str, ok: bool) -> None: ...
    def stage_finished(self, stage: Stage, seconds: float) -> None: ...


def instance_for(config: Config) -> dg.DagsterInstance:
    """The persistent instance of the configuration (DAGSTER_HOME, else <home>/dagster): the UI's too."""
    return dg.DagsterInstance.from_config(str(prepare_instance_dir(config)))


# Telemetry off: nothing leaves the machine. Automation conditions are evaluated by sensors (the
# project's `automation` sensor, running by default), which is also Dagster's default; said here so an
# operator reading the file sees it.
INSTANCE_SETTINGS = """\
telemetry:
  enabled: false
auto_materialize:
  enabled: true
  use_sensors: true
"""


def prepare_instance_dir(config: Config) -> Path:
    """The instance folder, made with a dagster.yaml on first use."""
    folder = config.instance_dir
    folder.mkdir(parents=True, exist_ok=True)
    settings = folder / "dagster.yaml"
    if not settings.exists():
        settings.write_text(INSTANCE_SETTINGS, encoding="utf-8")
    return folder


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The error a failed step raised (a Failure's description, say), not Dagster's generic step message."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            return error.message.strip().splitlines()[0].removeprefix("dagster._core.definitions.events.Failure: ")
    return "run failed"


class _StepEvents(logging.Handler):
    """Passes a run's step start and end events on to `Progress`."""

    def __init__(self, stage: Stage, progress: Progress) -> None:
        super().__init__(logging.DEBUG)
        self.stage = stage
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_meta", {}).get("dagster_event")
        if event is None or event.step_key is None:
            return
        if event.event_type_value == "STEP_START":
            self.progress.step_started(self.stage, event.step_key)
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            self.progress.step_finished(self.stage, event.step_key, event.event_type_value == "STEP_SUCCESS")


def _progress_logger(stage: Stage, progress: Progress) -> dg.LoggerDefinition:
    @dg.logger
    def step_events(_: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("conv_analytics.progress", logging.DEBUG)
        logger.addHandler(_StepEvents(stage, progress))
        return logger

    return step_events


def stage_job(platform: Platform, stage: Stage, progress: Progress | None = None) -> dg.JobDefinition:
    """The job of one stage, with a logger that reports its steps to `progress`."""
    loggers = {"console": dg.colored_console_logger, "progress": _progress_logger(stage, progress or Progress())}
    definitions = dg.Definitions(
        jobs=[dg.define_asset_job(RUN_JOB, selection=stage.selection)],
        assets=platform.graph.assets,
        resources=platform.resources,
        loggers=loggers,
    )
    return definitions.resolve_job_def(RUN_JOB)


def run_stage(
    job: dg.JobDefinition, stage: Stage, instance: dg.DagsterInstance | None = None, log_level: str = "DEBUG"
) -> dg.ExecuteInProcessResult:
    """One in-process run of a stage; a failure raises with the error the step raised."""
    tags = range_tags(stage.keys[0], stage.keys[-1]) if stage.keys else None
    result = job.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}, "progress": {}}},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )
    if not result.success:
        what = f"{stage.name} for {stage.keys[0]}..{stage.keys[-1]}" if stage.keys else stage.name
        raise RuntimeError(f"materialising {what} failed: {failure_reason(result)}")
    return result


def materialize_range(
    config: Config,
    selection: Sequence[dg.AssetKey],
    keys: list[str],
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
) -> dg.ExecuteInProcessResult:
    """One run over `keys` (consecutive partitions of one partitions definition) for the selected assets."""
    stage = Stage(", ".join(k.to_user_string() for k in selection), list(selection), keys)
    return run_stage(stage_job(Platform.build(config), stage), stage, instance, log_level)


def plan(platform: Platform, first: date, last: date) -> list[Stage]:
    """The daily assets for [first, last] in the order their weekly models need (raw records, the intent
    model of each week, enriched messages, the topic model of each week, then the categories and daily
    rollups), every week and month wholly inside the range, and the report."""
    graph = platform.graph
    days = graph.partitions.daily.get_partition_keys_in_range(dg.PartitionKeyRange(first.isoformat(), last.isoformat()))
    weeks = graph.partitions.model_weeks.get_partition_keys_in_range(
        dg.PartitionKeyRange(period_start("week", first).isoformat(), period_start("week", last).isoformat())
    )
    raw = [key for asset in graph.ingest for key in asset.keys]
    stages = [
        Stage("raw records", raw, days),
        Stage("intent model", [graph.intent_model.key], weeks),
        Stage("enriched messages", [graph.enriched.key], days),
        Stage("topic model", [graph.topic_model.key], weeks),
        Stage("categories and daily rollups", [graph.categories.key, graph.rollups["day"].key], days),
    ]
    for period, name in (("week", "weekly rollups"), ("month", "monthly rollups")):
        # a period inside the range is a partition only once it has ended (the current month is not)
        existing = set(graph.partitions.of(period).get_partition_keys())
        keys = [key for start in complete_periods(period, first, last) if (key := start.isoformat()) in existing]
        if keys:
            stages.append(Stage(name, [graph.rollups[period].key], keys))
    stages.append(Stage("analytics report", [graph.report.key], []))
    return stages


def materialize_days(
    config: Config,
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    progress: Progress | None = None,
    log_level: str = "DEBUG",
) -> RunSummary:
    """Run the plan for [first, last]; each stage is one run."""
    platform = Platform.build(config)
    progress = progress or Progress()
    stages = plan(platform, first, last)
    jobs = [stage_job(platform, stage, progress) for stage in stages]
    progress.planned(stages, sum(len(job.nodes_in_topological_order) for job in jobs))
    summary = RunSummary()
    for stage, job in zip(stages, jobs, strict=True):
        started = time.perf_counter()
        run_stage(job, stage, instance, log_level)
        summary.steps.append(StepResult(stage.name, stage.keys, time.perf_counter() - started))
        progress.stage_finished(stage, summary.steps[-1].seconds)
    return summary


def report_files(config: Config) -> list[Path]:
    return sorted(config.reports_dir.glob("*.html")) if config.reports_dir.is_dir() else []
