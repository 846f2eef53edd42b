"""UTC days, ISO weeks and calendar months as plain dates: the period arithmetic every layer shares.

Dagster-free on purpose: the rollup maths, the reports and the source clients use it without loading
the orchestrator (`partitions.py` builds Dagster's partitions on top of it).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

PERIODS = ("day", "week", "month")


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of one UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days that make up [start, end)."""
    first = start.astimezone(timezone.utc).date()
    count = (end.astimezone(timezone.utc).date() - first).days
    return [first + timedelta(days=i) for i in range(count)]


def days_in(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


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


def complete_periods(period: str, first: date, last: date) -> list[date]:
    """Starts of the periods that lie wholly inside [first, last]."""
    starts = []
    start = period_start(period, first)
    while start <= last:
        if start >= first and period_end(period, start) - timedelta(days=1) <= last:
            starts.append(start)
        start = period_end(period, start)
    return starts
