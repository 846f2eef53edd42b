"""Daily, ISO-week and monthly rollups: each period computed from all of its conversations.

Weekly and monthly rollups also take the daily rollups of their days as input: the IO manager then
refuses to run while a day is missing, and the `no_missing_day` check compares the days' counts
with the period's.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics import markdown
from conv_analytics.analytics import checks
from conv_analytics.analytics.rollups import compute_rollups, users_seen_before
from conv_analytics.failures import fails_clearly
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import MongoCollection, StoredTable, lake_pool
from conv_analytics.partitions import Partitions, follows_the_data
from conv_analytics.schemas import ROLLUPS

CHECKS: dict[str, tuple[str, Callable[..., list[str]]]] = {
    "shares_in_unit_interval": (
        "Every rate and share is in [0, 1] (or null when there is nothing to divide by).",
        lambda period, starts, rollups, daily: checks.shares_in_unit_interval(rollups),
    ),
    "counts_add_up": (
        "Per period, conversations and message counts of each dimension sum to the `all` row; "
        "new + returning users = active users.",
        lambda period, starts, rollups, daily: checks.counts_add_up(rollups),
    ),
    "no_missing_day": (
        "Every period has its `all` row; weeks and months have a daily rollup for each day whose "
        "counts add up to the period's.",
        checks.days_complete,
    ),
}


def check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(check, asset=asset, description=description, blocking=True)
        for check, (description, _) in CHECKS.items()
    ]


SUMMARY_COLUMNS = ("period_start", "conversations", "messages", "active_users", "new_users")


def _summary(rollups: pa.Table) -> str:
    alls = rollups.filter(pc.equal(rollups.column("dimension"), "all")).select(SUMMARY_COLUMNS)
    rows = alls.slice(max(alls.num_rows - 7, 0)).to_pylist()
    return markdown.table(SUMMARY_COLUMNS, ([r[c] for c in SUMMARY_COLUMNS] for r in rows))


def build_rollups(
    context: dg.AssetExecutionContext,
    period: str,
    categories: pa.Table,
    lake: LakeResource,
    history: Sequence[str],
    daily: pa.Table | None = None,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Compute the rollups of the run's periods, then yield them and the three check results."""
    starts = [date.fromisoformat(key) for key in context.partition_keys]
    started = time.perf_counter()
    users = pa.table({"user_id": pc.unique(categories.column("user_id"))})
    con = lake.duckdb(history)
    try:
        seen_before = users_seen_before(con, users, min(starts), history)
    finally:
        con.close()
    rollups = compute_rollups(categories, period, starts, seen_before)
    seconds = time.perf_counter() - started
    context.log.info(
        f"{period} rollups: {rollups.num_rows} rows for {len(starts)} period(s) from "
        f"{categories.num_rows} conversations in {seconds:.2f}s"
    )
    yield dg.Output(
        rollups,
        metadata={
            "periods": dg.MetadataValue.int(len(starts)),
            "conversations": dg.MetadataValue.int(categories.num_rows),
            "users_seen_before": dg.MetadataValue.int(seen_before.num_rows),
            "compute_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "summary": dg.MetadataValue.md(_summary(rollups)),
        },
    )
    for name, (_, check) in CHECKS.items():
        problems = check(period, starts, rollups, daily)
        yield dg.AssetCheckResult(
            check_name=name,
            passed=not problems,
            metadata={
                "problems": dg.MetadataValue.int(len(problems)),
                "examples": dg.MetadataValue.md(markdown.bullets(problems[: checks.MAX_PROBLEMS])),
            },
        )


ADJECTIVES = {"day": "daily", "week": "weekly", "month": "monthly"}
DESCRIPTIONS = {
    "day": "Per UTC day and dimension (all, channel, language, topic, primary intent): volumes, users, "
    "response times, outcome rates and sentiment of the conversations started that day.",
    "week": "Per ISO week (Monday to Sunday) and dimension, computed from the week's conversations (distinct "
    "users and percentiles are not sums of days); needs the daily rollups of all 7 days.",
    "month": "Per calendar month and dimension, computed from the month's conversations; needs the daily "
    "rollups of every day of the month.",
}


def _stored(name: str) -> StoredTable:
    """Rollups are mirrored to MongoDB, by day, and by dimension and value over time (a topic's trend)."""
    return StoredTable(
        ROLLUPS,
        "period_start",
        MongoCollection(
            name, ("period_start", "dimension", "value"), (("period_start",), ("dimension", "value", "period_start"))
        ),
    )


def build_rollup_asset(
    period: str,
    partitions: Partitions,
    categories: dg.AssetKey,
    history: Sequence[str],
    daily: dg.AssetsDefinition | None = None,
) -> dg.AssetsDefinition:
    """The rollups of one period from the conversation categories; `history` names the tables that say
    who was seen before. Weeks and months also take the daily rollups of their days, so the IO manager
    refuses to run while a day is missing and `no_missing_day` compares the days with the period."""
    name = f"{ADJECTIVES[period]}_rollups"
    ins = {"conversations": dg.AssetIn(key=categories)}
    if daily is not None:
        ins["daily"] = dg.AssetIn(key=daily.key)

    @dg.asset(
        name=name,
        description=DESCRIPTIONS[period],
        partitions_def=partitions.of(period),
        ins=ins,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=lake_pool(name),
        check_specs=check_specs(name),
        automation_condition=follows_the_data(reset_while_running=period == "day"),
        group_name="analytics",
        kinds={"duckdb", "parquet"},
        metadata=_stored(name).metadata(),
    )
    @fails_clearly
    def rollups(
        context: dg.AssetExecutionContext, conversations: pa.Table, lake: LakeResource, **daily_rollups: pa.Table
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        yield from build_rollups(context, period, conversations, lake, history, daily_rollups.get("daily"))

    return rollups


def build_rollup_assets(
    partitions: Partitions, categories: dg.AssetKey, history: Sequence[str]
) -> dict[str, dg.AssetsDefinition]:
    """Daily, weekly and monthly rollups, by period."""
    daily = build_rollup_asset("day", partitions, categories, history)
    return {
        "day": daily,
        "week": build_rollup_asset("week", partitions, categories, history, daily),
        "month": build_rollup_asset("month", partitions, categories, history, daily),
    }
