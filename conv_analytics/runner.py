"""Materialise the graph over a range of days in process: what `conv-analytics demo` and the tests run.

Each partitions definition gets one single-run backfill over its range (the same runs the Dagster UI's
backfill launches); daily assets go first, then the weeks and months they complete, then the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from conv_analytics.assets import DAILY_ASSETS
from conv_analytics.config import Config
from conv_analytics.definitions import ASSETS, build_resources
from conv_analytics.partitions import daily_partitions, monthly_partitions, range_tags, weekly_partitions


@dataclass
class StepResult:
    name: str
    partitions: list[str]
    seconds: float


@dataclass
class RunSummary:
    steps: list[StepResult] = field(default_factory=list)


def instance_for(config: Config) -> dg.DagsterInstance:
    """The instance of $DAGSTER_HOME, by default <home>/dagster: the one `make ui` shows."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(config.home / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    return dg.DagsterInstance.get()


def complete_periods(partitions: dg.TimeWindowPartitionsDefinition, first: date, last: date) -> list[str]:
    """Keys of the periods that lie wholly inside [first, last]."""
    keys = []
    for key in partitions.get_partition_keys():
        window = partitions.time_window_for_partition_key(key)
        if window.start.date() >= first and (window.end.date() - timedelta(days=1)) <= last:
            keys.append(key)
    return keys


def console_log_level(level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The error a failed step raised (a Failure's description, say), not Dagster's generic step message."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            return error.message.strip().splitlines()[0].removeprefix("dagster._core.definitions.events.Failure: ")
    return "run failed"


def _materialize(
    config: Config,
    selection: Sequence[str],
    what: str,
    instance: dg.DagsterInstance | None,
    log_level: str,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run of the selected assets; a failure raises with the error the step raised."""
    result = dg.materialize(
        ASSETS,
        selection=list(selection),
        resources=build_resources(config),
        instance=instance,
        tags=tags,
        run_config=console_log_level(log_level),
        raise_on_error=False,
    )
    if not result.success:
        raise RuntimeError(f"materialising {what} failed: {failure_reason(result)}")
    return result


def materialize_range(
    config: Config,
    selection: Sequence[str],
    keys: list[str],
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
) -> dg.ExecuteInProcessResult:
    """One run over `keys` (consecutive partitions of one partitions definition) for the selected assets."""
    what = f"{', '.join(selection)} for {keys[0]}..{keys[-1]}"
    return _materialize(config, selection, what, instance, log_level, range_tags(keys[0], keys[-1]))


def materialize_days(
    config: Config,
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    progress: Callable[[str], None] = lambda _: None,
    log_level: str = "DEBUG",
) -> RunSummary:
    """Daily assets for [first, last], then every week and month wholly inside it, then the report."""
    summary = RunSummary()
    plan: list[tuple[str, Sequence[str], list[str]]] = [
        (
            "daily assets",
            DAILY_ASSETS,
            daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first.isoformat(), last.isoformat())),
        ),
        ("weekly rollups", ("weekly_rollups",), complete_periods(weekly_partitions, first, last)),
        (
            "monthly rollups",
            ("monthly_rollups",),
            complete_periods(monthly_partitions, first, last),
        ),
    ]
    for name, selection, keys in plan:
        if not keys:
            progress(f"{name}: no complete period in {first}..{last}, skipped")
            continue
        progress(f"{name}: {keys[0]}..{keys[-1]} ({len(keys)} partitions) ...")
        started = time.perf_counter()
        materialize_range(config, selection, keys, instance, log_level)
        summary.steps.append(StepResult(name, keys, time.perf_counter() - started))
        progress(f"{name}: done in {summary.steps[-1].seconds:.1f}s")
    progress("analytics report ...")
    started = time.perf_counter()
    _materialize(config, ["analytics_report"], "analytics_report", instance, log_level)
    summary.steps.append(StepResult("analytics report", [], time.perf_counter() - started))
    return summary


def report_files(config: Config) -> list[Path]:
    return sorted(config.reports_dir.glob("*.html")) if config.reports_dir.is_dir() else []
