"""Materialise the graph over a range of days in process: what `conv-analytics run`, `demo` and the tests run.

Each stage of the plan is a single-run backfill over its range (the same runs the Dagster UI's backfill
launches); daily assets go first, then the weeks and months they complete, then the report. A long range
is cut into several such runs of whole days (weeks, months) holding about `run_batch_messages` rows
each (messages; conversations for the weekly and monthly rollups, which read only those), so a run's
memory follows the largest day, not the length of the range. A logger follows each
run's steps, so the command line can show progress while a run works.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.execute_in_process import core_execute_in_process

from conv_analytics.alerts.message import error_line
from conv_analytics.config import Config
from conv_analytics.dates import complete_periods, days_in, period_end, period_start
from conv_analytics.definitions import Platform
from conv_analytics.errors import PlatformError
from conv_analytics.failures import SETTING_PROBLEM
from conv_analytics.io.resources import lake_resource
from conv_analytics.partitions import range_tags
from conv_analytics.sources.base import Entity

RUN_JOB = "conv_analytics_run"
FIRST_BATCH_DAYS = 7  # days of the first run of a stage while no day's size is known yet


@dataclass
class StepResult:
    name: str
    partitions: list[str]
    seconds: float
    runs: int = 1


@dataclass
class RunSummary:
    steps: list[StepResult] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """One run of the plan: a name for people, the assets it materialises and its partition keys."""

    name: str
    selection: list[dg.AssetKey]
    keys: list[str]  # empty: an unpartitioned asset
    period: str | None = None  # day | week | month: runs in batches of whole periods; None: one run
    counted: Entity = "messages"  # the raw rows per day the batch budget counts


class Progress:
    """What a caller is told while the plan runs; the defaults tell nothing."""

    def planned(self, stages: Sequence[Stage], steps: int) -> None: ...
    def step_started(self, stage: Stage, step: str) -> None: ...
    def step_finished(self, stage: Stage, step: str, ok: bool) -> None: ...
    def more_steps(self, stage: Stage, steps: int) -> None:
        """A stage needs another run (a long range in batches): `steps` more steps than planned."""

    def stage_finished(self, stage: Stage, seconds: float) -> None: ...


class RunFailed(PlatformError):
    """A run of the plan failed: the message is the failed step's one line.

    `setting_problem`: the step failed on an invalid setting; `details`: the step's error with its stack
    (what `--debug` shows).
    """

    def __init__(self, message: str, setting_problem: bool = False, details: str = "") -> None:
        super().__init__(message)
        self.setting_problem = setting_problem
        self.details = details


def failure_reason(result: dg.ExecuteInProcessResult) -> tuple[str, bool, str]:
    """The error a failed step or resource raised (a Failure's description, say), not Dagster's generic
    message: its first line, whether it is about a setting, and the whole error with its stack. A run that
    another run's claim stops fails as its IO manager starts."""
    for event in result.all_events:
        error, user = None, None
        if event.is_step_failure:
            error, user = event.step_failure_data.error, event.step_failure_data.user_failure_data
        elif event.is_resource_init_failure:
            error = event.engine_event_data.error
        if error is not None:
            setting = bool(user and user.metadata.get(SETTING_PROBLEM, dg.MetadataValue.bool(False)).value)
            return error_line(error), setting, error.to_string()
    return "run failed", False, ""


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


def stage_job(
    platform: Platform, stage: Stage, progress: Progress | None = None, console: bool = True
) -> dg.JobDefinition:
    """The job of one stage, with a logger that reports its steps to `progress`, and Dagster's console
    logger unless `console` is false (the event log in the instance keeps every event either way)."""
    loggers: dict[str, dg.LoggerDefinition] = {"progress": _progress_logger(stage, progress or Progress())}
    if console:
        loggers["console"] = dg.colored_console_logger
    definitions = dg.Definitions(
        jobs=[dg.define_asset_job(RUN_JOB, selection=stage.selection)],
        assets=platform.graph.assets,
        asset_checks=platform.mongo_checks,
        resources=platform.resources,
        loggers=loggers,
    )
    return definitions.resolve_job_def(RUN_JOB)


def _free_earlier_runs() -> None:
    """Free what earlier runs left, before the next one starts.

    The tables of earlier runs are held in reference cycles (Dagster's contexts) that Python's collector
    seldom reaches, since Arrow allocates outside it: collected here, no run's memory is carried into
    the next one. What survives the collection outlives runs (definitions, loaded models, compiled
    kernels, Dagster's caches): it is frozen, so the next collection walks only what was made since
    instead of the whole heap (a full collection took about 0.3 s a run at 3M messages). Callers
    unfreeze with `_runs_done` at the end.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def _runs_done() -> Iterator[None]:
    """Runs of one caller: what was frozen between them is handed back to the collector afterwards."""
    try:
        yield
    finally:
        gc.unfreeze()


def _execute_in_process(
    job: dg.JobDefinition, run_config: dict, instance: dg.DagsterInstance | None, tags: dict[str, str]
) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process(...)` without keeping the steps' outputs.

    `execute_in_process` holds every step's output (here a run's whole tables) until the run ends, for
    `output_for_node` (dagster-io/dagster#9731); every output is already in the lake and the runner reads
    only the run's events. Holding them raised the peak of a 90-day run of 1,000 conversations a day by
    150 MiB (1,271 against 1,121). This is what `execute_in_process` does, with the capture turned off;
    Dagster is pinned to one release, and `test_a_run_keeps_no_step_output_in_memory` fails if it changes.
    """
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={})
    return core_execute_in_process(
        run_config=run_config,
        job=InMemoryJob(ephemeral),
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=False,
        run_tags={**job.run_tags, **tags},
        asset_selection=frozenset(),
    )


def run_stage(
    job: dg.JobDefinition, stage: Stage, instance: dg.DagsterInstance | None = None, log_level: str | None = "DEBUG"
) -> dg.ExecuteInProcessResult:
    """One in-process run of a stage (`log_level` None: a job without the console logger); a failure
    raises RunFailed with the line of the step that failed."""
    tags = range_tags(stage.keys[0], stage.keys[-1]) if stage.keys else {}
    _free_earlier_runs()
    loggers: dict[str, object] = {"progress": {}}
    if log_level is not None:
        loggers["console"] = {"config": {"log_level": log_level}}
    result = _execute_in_process(job, {"loggers": loggers}, instance, tags)
    if not result.success:
        what = f"{stage.name} for {stage.keys[0]}..{stage.keys[-1]}" if stage.keys else stage.name
        line, setting_problem, details = failure_reason(result)
        raise RunFailed(f"materialising {what} failed: {line}", setting_problem, details)
    return result


def materialize_range(
    config: Config,
    selection: Sequence[dg.AssetKey],
    keys: list[str],
    instance: dg.DagsterInstance | None = None,
    log_level: str | None = "DEBUG",
) -> dg.ExecuteInProcessResult:
    """One run over `keys` (consecutive partitions of one partitions definition) for the selected assets."""
    stage = Stage(", ".join(k.to_user_string() for k in selection), list(selection), keys)
    job = stage_job(Platform.build(config), stage, console=log_level is not None)
    with _runs_done():
        return run_stage(job, stage, instance, log_level)


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
    # the weekly models read a window of days from the lake, whatever the run: all weeks in one run
    stages = [
        Stage("raw records", raw, days, "day"),
        Stage("intent model", [graph.intent_model.key], weeks),
        Stage("enriched messages", [graph.enriched.key], days, "day"),
        Stage("topic model", [graph.topic_model.key], weeks),
        Stage("categories and daily rollups", [graph.categories.key, graph.rollups["day"].key], days, "day"),
    ]
    for period, name in (("week", "weekly rollups"), ("month", "monthly rollups")):
        # a period inside the range is a partition only once it has ended (the current month is not)
        existing = set(graph.partitions.of(period).get_partition_keys())
        keys = [key for start in complete_periods(period, first, last) if (key := start.isoformat()) in existing]
        if keys:
            stages.append(Stage(name, [graph.rollups[period].key], keys, period, counted="conversations"))
    stages.append(Stage("analytics report", [graph.report.key], []))
    return stages


@dataclass
class DaySizes:
    """Rows per day (of `raw_messages` or `raw_conversations` in the lake); a day not counted yet (before
    its raw records are written) is taken as large as the largest one counted."""

    counts: dict[str, int]

    def of(self, period: str, key: str) -> int | None:
        """Rows of the period starting on `key`; None while nothing has been counted."""
        if not self.counts:
            return None
        largest = max(self.counts.values())
        start = date.fromisoformat(key)
        days = days_in(start, period_end(period, start) - timedelta(days=1))
        return sum(self.counts.get(day.isoformat(), largest) for day in days)


def next_batch(keys: list[str], period: str, sizes: DaySizes, budget: int) -> list[str]:
    """The first keys of `keys` that hold at most `budget` rows together (always at least one)."""
    if sizes.of(period, keys[0]) is None:
        return keys[: FIRST_BATCH_DAYS if period == "day" else 1]
    batch, held = [], 0
    for key in keys:
        size = sizes.of(period, key) or 0
        if batch and held + size > budget:
            break
        batch.append(key)
        held += size
    return batch


def rewritten_days(result: dg.ExecuteInProcessResult, stage: Stage) -> list[date]:
    """Days outside the stage that its run rewrote: older partitions an id left for a newer version."""
    keys = set(stage.keys)
    days = {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.partition is not None and event.partition not in keys
    }
    return sorted(date.fromisoformat(day) for day in days)


def stale_plan(platform: Platform, days: Sequence[date]) -> list[Stage]:
    """What was built from raw days that a run rewrote (ids moved out of them) and is now stale: their
    enriched messages; their categories and daily rollups, and the day before's (a conversation reads
    the next day's messages); the weeks and months holding those days. Only partitions built before are
    stale (the others are simply not built yet). The weekly topic and intent models are not refitted:
    they are fits over a window, not counts."""
    graph = platform.graph
    lake = platform.resources["lake"].lake()  # type: ignore[attr-defined]

    def built(key: dg.AssetKey) -> set[date]:
        return {date.fromisoformat(k) for k in lake.keys(key.path[-1])}

    enriched = sorted(set(days) & built(graph.enriched.key))
    categories = sorted({d for day in days for d in (day - timedelta(days=1), day)} & built(graph.categories.key))
    daily = [graph.categories.key, graph.rollups["day"].key]
    stages = [Stage("enriched messages (rewritten days)", [graph.enriched.key], k) for k in _consecutive(enriched)]
    stages += [Stage("categories and daily rollups (rewritten days)", daily, k) for k in _consecutive(categories)]
    for period, name in (("week", "weekly rollups"), ("month", "monthly rollups")):
        periods = {period_start(period, d) for d in categories} & built(graph.rollups[period].key)
        stages += [
            Stage(f"{name} (rewritten days)", [graph.rollups[period].key], [p.isoformat()]) for p in sorted(periods)
        ]
    return stages


def _consecutive(days: list[date]) -> list[list[str]]:
    """Sorted days as runs of consecutive days (partition keys): each run is one single-run backfill."""
    groups: list[list[date]] = []
    for day in days:
        if groups and day - groups[-1][-1] == timedelta(days=1):
            groups[-1].append(day)
        else:
            groups.append([day])
    return [[d.isoformat() for d in group] for group in groups]


def materialize_days(
    config: Config,
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    progress: Progress | None = None,
    log_level: str | None = "DEBUG",
) -> RunSummary:
    """Run the plan for [first, last]: each stage in as few runs as hold `run_batch_messages` rows each
    (`log_level` None: no console logging)."""
    platform = Platform.build(config)
    progress = progress or Progress()
    stages = plan(platform, first, last)
    jobs = [stage_job(platform, stage, progress, console=log_level is not None) for stage in stages]
    progress.planned(stages, sum(len(job.nodes_in_topological_order) for job in jobs))
    raw = {entity: tables.raw for entity, tables in platform.graph.entities.items()}
    lake = lake_resource(config).lake()
    # days of an earlier run: a first estimate of their sizes
    sizes = {
        entity: DaySizes(lake.row_counts(asset, sorted(set(stages[0].keys) & set(lake.keys(asset)))))
        for entity, asset in raw.items()
    }
    with _runs_done():
        summary = RunSummary()
        rewritten: list[date] = []
        for stage, job in zip(stages, jobs, strict=True):
            started = time.perf_counter()
            remaining, runs = list(stage.keys), 0
            while True:
                if runs:
                    progress.more_steps(stage, len(job.nodes_in_topological_order))
                keys = (
                    next_batch(remaining, stage.period, sizes[stage.counted], config.run_batch_messages)
                    if stage.period
                    else remaining
                )
                batch = replace(stage, keys=keys)
                result = run_stage(job, batch, instance, log_level)
                runs += 1
                if stage is stages[0]:
                    for entity, asset in raw.items():
                        sizes[entity].counts.update(lake.row_counts(asset, keys))
                    rewritten += [day for day in rewritten_days(result, batch) if not first <= day <= last]
                remaining = remaining[len(keys) :]
                if not remaining:
                    break
            summary.steps.append(StepResult(stage.name, stage.keys, time.perf_counter() - started, runs))
            progress.stage_finished(stage, summary.steps[-1].seconds)
        # days before the range that lost ids to it: their derived assets are rebuilt too (the report,
        # run last above, already read the rollups of the range; it is run again after them)
        extra = stale_plan(platform, sorted(set(rewritten)))
        if extra:
            extra.append(stages[-1])
            for stage in extra:
                started = time.perf_counter()
                run_stage(stage_job(platform, stage, progress), stage, instance, log_level)
                summary.steps.append(StepResult(stage.name, stage.keys, time.perf_counter() - started))
                progress.stage_finished(stage, summary.steps[-1].seconds)
        return summary


def report_files(config: Config) -> list[Path]:
    return sorted(config.reports_dir.glob("*.html")) if config.reports_dir.is_dir() else []
