"""Time partitions: daily data in UTC, ISO-week and calendar-month rollups fed from the days."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import dagster as dg

from conv_analytics.config import Config

START_DATE: date = Config.from_env().start_date

# Today is a partition too (end_offset=1), so the sensor can fill it as the day goes on.
daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC", end_offset=1)
# ISO weeks start on Monday; only complete weeks and months are partitions.
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC", day_offset=1)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC")

PERIODS: dict[str, dg.TimeWindowPartitionsDefinition] = {
    "day": daily_partitions,
    "week": weekly_partitions,
    "month": monthly_partitions,
}


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of one UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days that make up [start, end)."""
    first = start.astimezone(timezone.utc).date()
    count = (end.astimezone(timezone.utc).date() - first).days
    return [first + timedelta(days=i) for i in range(count)]


def period_start(period: str, day: date) -> date:
    """The first day of the day/ISO-week/month that contains `day`."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"period must be day, week or month, not {period!r}")


def period_end(period: str, start: date) -> date:
    """The day after the last day of the period that starts on `start`."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError(f"period must be day, week or month, not {period!r}")


# Eager, but over the last two days: a day's conversation categories (and daily rollups) are requested
# again when the next day's messages arrive, since conversations that ran past midnight changed.
eager_with_next_day = dg.AutomationCondition.eager().replace(
    "in_latest_time_window", dg.AutomationCondition.in_latest_time_window(timedelta(days=2))
)


def range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """Run tags that make one run cover a range of partitions (assets with a single-run backfill policy)."""
    return {"dagster/asset_partition_range_start": first_key, "dagster/asset_partition_range_end": last_key}
