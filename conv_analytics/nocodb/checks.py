"""Reconciliation of the lake with NocoDB: every NocoDB row of a day must be in that day's partition.

For each day of the run, NocoDB's own count for the day's filter (`pageInfo.totalRows`, the same
filter the source reads with) must equal the rows stored for it: raw rows plus quarantined rows.
Rows dropped as duplicates of an id, or as older versions of an id stored on another day, explain a
difference; anything else (a lost row, a row deleted or moved in NocoDB since) fails the check, which
is blocking, so nothing downstream is built from a partition that does not match its source. On a
difference the check names example rows.

The check is partitioned by day. A run over a range of days (the sensor's single-run backfills) gets one
result from Dagster, recorded for no partition, and the UI showed each day of the range as "Skipped";
so each day's own result is also recorded, against that day's materialisation.
"""

from collections import Counter
from datetime import date
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster import AssetCheckExecutionContext
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from conv_analytics.config import Config
from conv_analytics.dates import day_window, days_between
from conv_analytics.failures import fails_clearly
from conv_analytics.io.ids import IdIndex
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import EntityTables, StoredTable
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.nocodb.source import LOCATOR_PREFIX, NocoDBSource
from conv_analytics.sources.base import ID_FIELD, Entity

EXAMPLES = 10


def _column(lake: ParquetLake, asset: str, table: StoredTable, key: str, column: str) -> list[Any] | None:
    """One column of a partition, or None when the partition was never written."""
    if not lake.exists(asset, key):
        return None
    return lake.read(asset, [key], table.schema, columns=[column]).column(column).to_pylist()


def _explain(
    source: NocoDBSource, entity: Entity, key: str, raw_ids: list[Any], locators: list[str], ids: IdIndex
) -> dict[str, Any]:
    """Which rows differ: NocoDB rows missing from the lake, lake rows NocoDB no longer has, duplicates,
    and rows whose id is stored on another day as a newer version (one id, one row)."""
    start, end = day_window(date.fromisoformat(key))
    id_column = source.column(entity, ID_FIELD[entity])
    noco: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for record in source.fetch(entity, start, end):
        our_id = str((record.fields or {}).get(id_column))
        noco[record.locator] = our_id
        counts[our_id] += 1
    quarantined = set(locators)
    stored = {str(x) for x in raw_ids}
    missing = sorted(loc for loc, our in noco.items() if our not in stored and loc not in quarantined)
    found, _ = ids.lookup(pa.array(sorted({noco[loc] for loc in missing}), pa.string()), skip={key})
    elsewhere = set(found.column("id").to_pylist())
    superseded = [loc for loc in missing if noco[loc] in elsewhere]
    missing = [loc for loc in missing if noco[loc] not in elsewhere]
    in_noco = set(noco.values())
    extra = sorted((stored - in_noco) | {loc for loc in quarantined if loc not in noco})
    return {
        "duplicate_rows": sum(c - 1 for c in counts.values() if c > 1),
        "superseded_rows": len(superseded),
        "missing_in_lake": missing[:EXAMPLES],
        "missing_in_lake_count": len(missing),
        "not_in_nocodb": extra[:EXAMPLES],
        "not_in_nocodb_count": len(extra),
    }


def reconcile_day(
    source: NocoDBSource, lake: ParquetLake, entity: Entity, tables: EntityTables, key: str
) -> dict[str, Any]:
    """The counts of one day on both sides and whether they agree."""
    start, end = day_window(date.fromisoformat(key))
    expected = source.count(entity, start, end)
    raw_ids = _column(lake, tables.raw, tables.raw_table, key, ID_FIELD[entity])
    if raw_ids is None:
        return {
            "day": key,
            "ok": False,
            "nocodb_rows": expected,
            "problem": "partition not materialised",
        }
    quarantined = _column(lake, tables.quarantined, tables.quarantined_table, key, "locator") or []
    locators = [loc for loc in quarantined if loc.startswith(LOCATOR_PREFIX)]
    result: dict[str, Any] = {
        "day": key,
        "nocodb_rows": expected,
        "raw_rows": len(raw_ids),
        "quarantined_rows": len(locators),
    }
    stored = len(raw_ids) + len(locators)
    if stored == expected:
        return {**result, "ok": True}
    index = IdIndex(lake, tables.raw, tables.raw_table.schema, ID_FIELD[entity], tables.raw_table.time_column)
    details = _explain(source, entity, key, raw_ids, locators, index)
    explained = stored + details["duplicate_rows"] + details["superseded_rows"]
    ok = explained == expected and not details["missing_in_lake_count"]
    return {**result, **details, "ok": ok}


def _day_metadata(day: dict[str, Any]) -> dict[str, Any]:
    return {
        "nocodb_rows": day["nocodb_rows"],
        "lake_rows": day.get("raw_rows", 0) + day.get("quarantined_rows", 0),
        "differences": dg.MetadataValue.json({k: v for k, v in day.items() if k not in ("day", "ok")}),
    }


def record_each_day(context: AssetCheckExecutionContext, check: dg.AssetCheckKey, days: list[dict[str, Any]]) -> None:
    """Record each day's result of a run over a range as that day's check evaluation (Dagster records the
    range's single result for no partition, which leaves every day of it "Skipped")."""
    for day in days:
        latest = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=check.asset_key, asset_partitions=[day["day"]]), limit=1
        ).records
        target = (
            AssetCheckEvaluationTargetMaterializationData(
                run_id=latest[0].run_id, storage_id=latest[0].storage_id, timestamp=latest[0].timestamp
            )
            if latest
            else None
        )
        context.op_execution_context.log_event(
            dg.AssetCheckEvaluation(
                asset_key=check.asset_key,
                check_name=check.name,
                passed=day["ok"],
                metadata=_day_metadata(day),
                target_materialization_data=target,
                blocking=True,
                partition=day["day"],
                description=None if day["ok"] else day.get("problem", "differs from NocoDB"),
            )
        )


def build_reconciliation_check(
    entity: Entity, tables: EntityTables, partitions: dg.TimeWindowPartitionsDefinition
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(tables.raw),
        name="matches_nocodb",
        partitions_def=partitions,
        blocking=True,
        description=f"NocoDB's row count per day equals the {entity} stored for it (raw + quarantined).",
    )
    @fails_clearly
    def matches_nocodb(
        context: AssetCheckExecutionContext, nocodb: NocoDBResource, lake: LakeResource
    ) -> dg.AssetCheckResult:
        if not nocodb.enabled:
            return dg.AssetCheckResult(
                passed=True, description=f"{Config.nocodb_url.env} is not set: nothing to reconcile"
            )
        window = context.partition_time_window
        keys = [d.isoformat() for d in days_between(window.start, window.end)]
        source = nocodb.source()
        days = [reconcile_day(source, lake.lake(), entity, tables, key) for key in keys]
        if not context.has_partition_key:
            record_each_day(context, context.check_specs[0].key, days)
        bad = [d for d in days if not d["ok"]]
        for day in bad:
            context.log.error(f"{tables.raw} {day['day']} does not match NocoDB: {day}")
        summary = "; ".join(
            f"{d['day']}: NocoDB {d['nocodb_rows']}, lake {d.get('raw_rows', 0) + d.get('quarantined_rows', 0)}"
            + (f" ({d['problem']})" if "problem" in d else "")
            for d in bad
        )
        return dg.AssetCheckResult(
            passed=not bad,
            description=f"{len(bad)} of {len(days)} day(s) differ from NocoDB: {summary}" if bad else None,
            metadata={
                "days": len(days),
                "nocodb_rows": sum(d["nocodb_rows"] for d in days),
                "lake_rows": sum(d.get("raw_rows", 0) + d.get("quarantined_rows", 0) for d in days),
                "differences": dg.MetadataValue.json(bad),
            },
        )

    return matches_nocodb
