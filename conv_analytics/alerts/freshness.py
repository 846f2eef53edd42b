"""Freshness checks: yesterday's daily partitions (UTC) should exist by CONV_ANALYTICS_FRESH_BY_HOUR.

Dagster's `FreshnessPolicy` looks at the last materialisation of any partition (a backfill of an old
day, or today's partition, would count as fresh) and cannot warn on a cron deadline, and
`build_time_partition_freshness_checks` expects the last partition at the deadline, here today's (the
daily partitions end one day ahead, so the NocoDB sensor can fill today). So the check is our own, a
WARN per daily asset shown on its checks in the UI, and its automation condition has the daemon's
automation sensor run it at the deadline and then every hour while it warns.
(No postponed annotations here: Dagster checks the check function's `context` annotation as a class.)
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from conv_analytics.config import Config

CHECK_NAME = "daily_freshness"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def latest_deadline(now: datetime, hour: int) -> datetime:
    """The most recent moment, at or before `now`, when yesterday's partitions were due."""
    today = now.astimezone(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if now >= today else today - timedelta(days=1)


def expected_day(now: datetime, hour: int) -> date:
    """The latest complete UTC day that must be materialised by `now`."""
    return latest_deadline(now, hour).date() - timedelta(days=1)


def build_freshness_checks(
    assets: Sequence[dg.AssetKey], start: date, hour: int, clock: Callable[[], datetime] = utc_now
) -> dg.AssetChecksDefinition:
    """One WARN check per daily asset: is the partition of the latest complete day materialised?"""
    specs = [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=f"Yesterday's partition (UTC) exists by {hour:02d}:00 UTC ({Config.fresh_by_hour.env}).",
            automation_condition=freshness_condition(hour),
        )
        for key in assets
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=CHECK_NAME)
    def daily_freshness(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        now = clock()
        deadline = latest_deadline(now, hour)
        day = deadline.date() - timedelta(days=1)
        for check_key in context.selected_asset_check_keys:
            metadata: dict[str, dg.RawMetadataValue] = {
                "expected_partition": day.isoformat(),
                "deadline": dg.MetadataValue.timestamp(deadline.timestamp()),
            }
            if day < start:
                passed, description = True, f"no partition is due yet (the partitions start on {start})"
            else:
                records = context.instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=check_key.asset_key, asset_partitions=[day.isoformat()]), limit=1
                ).records
                passed = bool(records)
                if passed:
                    metadata["materialized_at"] = dg.MetadataValue.timestamp(records[0].timestamp)
                    description = f"{day} is materialised"
                else:
                    overdue = now.timestamp() - deadline.timestamp()
                    metadata["overdue_minutes"] = round(overdue / 60)
                    description = f"{day} is not materialised; it was due at {deadline:%Y-%m-%d %H:%M} UTC"
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=check_key.name,
                passed=passed,
                severity=dg.AssetCheckSeverity.WARN,
                description=description,
                metadata=metadata,
            )

    return daily_freshness


def freshness_condition(hour: int) -> dg.AutomationCondition:
    """Run at each deadline, then hourly until a result passes for the asset as it is; never twice at once.

    (A result counts as passed only until the asset is updated again, so an update also brings one
    more run at the next full hour.)
    """
    due = dg.AutomationCondition.cron_tick_passed(f"0 {hour} * * *", "UTC")
    recheck = dg.AutomationCondition.cron_tick_passed("0 * * * *", "UTC") & ~dg.AutomationCondition.check_passed()
    return (due | recheck) & ~dg.AutomationCondition.in_progress()
