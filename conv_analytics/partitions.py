"""Dagster's time partitions for one start date: UTC days, ISO weeks and calendar months.

Built by `Partitions.starting(config.start_date)` when the definitions load, never at import: the
start date is a setting. The period arithmetic itself is Dagster-free, in `dates.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

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


# Eager, but over the last two days: a day's conversation categories (and daily rollups) are requested
# again when the next day's messages arrive, since conversations that ran past midnight changed.
eager_with_next_day = dg.AutomationCondition.eager().replace(
    "in_latest_time_window", dg.AutomationCondition.in_latest_time_window(timedelta(days=2))
)


def range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """Run tags that make one run cover a range of partitions (assets with a single-run backfill policy)."""
    return {"dagster/asset_partition_range_start": first_key, "dagster/asset_partition_range_end": last_key}
