"""Dagster's time partitions for one start date: UTC days, ISO weeks and calendar months.

Built by `Partitions.starting(config.start_date)` when the definitions load, never at import: the
start date is a setting. The period arithmetic itself is Dagster-free, in `dates.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg


@dataclass(frozen=True)
class Partitions:
    daily: dg.DailyPartitionsDefinition
    weekly: dg.WeeklyPartitionsDefinition
    monthly: dg.MonthlyPartitionsDefinition
    model_weeks: dg.WeeklyPartitionsDefinition  # the weeks of model versions, the current one included

    @classmethod
    def starting(cls, start: date) -> Partitions:
        first = start.isoformat()
        return cls(
            # today is a partition too (end_offset=1), so the sensor can fill it as the day goes on
            daily=dg.DailyPartitionsDefinition(start_date=first, timezone="UTC", end_offset=1),
            # ISO weeks start on Monday; only complete weeks and months are partitions
            weekly=dg.WeeklyPartitionsDefinition(start_date=first, timezone="UTC", day_offset=1),
            monthly=dg.MonthlyPartitionsDefinition(start_date=first, timezone="UTC"),
            # a model for the week in progress too, so today's conversations have one
            model_weeks=dg.WeeklyPartitionsDefinition(start_date=first, timezone="UTC", day_offset=1, end_offset=1),
        )

    def of(self, period: str) -> dg.TimeWindowPartitionsDefinition:
        return {"day": self.daily, "week": self.weekly, "month": self.monthly}[period]


def follows_the_data(reset_while_running: bool = False) -> dg.AutomationCondition:
    """Dagster's `eager()` at any age: a partition is requested when one of the partitions it reads is
    materialised or changes (or when it first becomes a partition), once none of them is missing or in
    progress. `eager()` itself looks only at the latest time window, so an old month loaded late never
    got its weeks and month. Weeks and months are partitions only once complete, so the current ones are
    never requested. A request or materialisation resets the trigger: one request per change.

    `reset_while_running`, for the assets the NocoDB sensor's runs build with their inputs (a day's
    categories and rollups): a run in progress that will build the partition resets the trigger too.
    Dagster ignores input updates made by a run that also builds the asset, but for partitions it only
    recognises the asset's latest partition, so a run over a range of days would otherwise leave every
    other day requested once more after the run."""
    handled = (
        dg.AutomationCondition.newly_requested()
        | dg.AutomationCondition.newly_updated()
        | dg.AutomationCondition.initial_evaluation()
    )
    if reset_while_running:
        handled = handled | dg.AutomationCondition.in_progress()
    trigger = dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    return (
        trigger.since(handled.with_label("handled"))
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("follows_the_data")


def whenever_a_dependency_updates() -> dg.AutomationCondition:
    """For an unpartitioned asset over partitioned ones (the report): requested after any of their
    partitions is materialised, once none is in progress. Not `eager()`, which would wait until every
    partition since the start date exists."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("whenever_a_dependency_updates")


def range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """Run tags that make one run cover a range of partitions (assets with a single-run backfill policy)."""
    return {"dagster/asset_partition_range_start": first_key, "dagster/asset_partition_range_end": last_key}
