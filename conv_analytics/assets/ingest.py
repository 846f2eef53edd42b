"""Raw conversations and messages, one UTC day a partition, with the records that failed validation kept aside."""

import time
from collections.abc import Iterator
from dataclasses import asdict

import dagster as dg
import pyarrow as pa

from conv_analytics.dates import day_window, days_between
from conv_analytics.failures import fails_clearly
from conv_analytics.io.ids import IdIndex, Resolution, index_table, resolve
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import EntityTables, StoredTable, lake_pool
from conv_analytics.schemas import QUARANTINE, RAW_CONVERSATIONS, RAW_MESSAGES
from conv_analytics.sources import normalize
from conv_analytics.sources.base import ENTITIES, ID_FIELD, TIME_FIELD, Batch, Entity, RecordCounts, read_ahead
from conv_analytics.sources.resource import SourceResource

ACCOUNTED = "records_accounted"
RAW_SCHEMAS: dict[Entity, pa.Schema] = {"conversations": RAW_CONVERSATIONS, "messages": RAW_MESSAGES}


def entity_tables(entity: Entity) -> EntityTables:
    """The two tables one read of an entity fills: `raw_<entity>` and `quarantined_<entity>`."""
    return EntityTables(
        raw=f"raw_{entity}",
        raw_table=StoredTable(RAW_SCHEMAS[entity], TIME_FIELD[entity]),
        quarantined=f"quarantined_{entity}",
        quarantined_table=StoredTable(QUARANTINE, "partition_date"),
    )


def accounted(raw: str, counts: dict[str, RecordCounts]) -> dg.AssetCheckResult:
    """Whether every record read from each origin ended up in exactly one place for this run."""
    off = {name: asdict(c) for name, c in counts.items() if not c.balanced or c.other_days}
    return dg.AssetCheckResult(
        asset_key=raw,
        check_name=ACCOUNTED,
        passed=not off,
        description=f"records unaccounted for in {', '.join(sorted(off))}" if off else None,
        metadata={
            "origins": len(counts),
            "read": sum(c.read for c in counts.values()),
            "unbalanced": dg.MetadataValue.json(off),
        },
    )


def id_index(lake: LakeResource, entity: Entity) -> IdIndex:
    """The id index of an entity's raw table."""
    return IdIndex(lake.lake(), f"raw_{entity}", RAW_SCHEMAS[entity], ID_FIELD[entity], TIME_FIELD[entity])


def batch_index(index: IdIndex, batch: Batch) -> pa.Table:
    """The index rows of one day's batch."""
    return index_table(batch.table.column(index.id_column), batch.table.column(index.time_column), batch.versions)


def one_row_per_id(index: IdIndex, batches: dict[str, Batch], counts: dict[str, RecordCounts]) -> Resolution:
    """Drop from the days read the rows whose id has a newer version elsewhere (counted as duplicates of
    their origin), and say which ids leave older partitions; the batches are cut in place."""
    read = {day: batch_index(index, batch) for day, batch in batches.items()}
    ids = pa.chunked_array([c for t in read.values() for c in t.column("id").chunks], pa.string())
    stored, stored_days = index.lookup(ids.combine_chunks(), skip=set(batches))
    resolution = resolve(read, stored, stored_days)
    for day, positions in resolution.dropped.items():
        batch = batches[day]
        for position in positions:
            counts[batch.origins[position]].raw -= 1
            counts[batch.origins[position]].duplicates += 1
        keep = pa.array(resolution.keep[day], pa.int64())
        batch.table = batch.table.take(keep)
        batch.versions = batch.versions.take(keep)
        batch.origins = [batch.origins[i] for i in resolution.keep[day]]
        batch.duplicates += len(positions)
    return resolution


def build_ingest_asset(entity: Entity, partitions: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    """One multi-asset per entity: raw rows and quarantined records come from the same read, and either
    can be materialised alone (the multi-asset is subsettable)."""
    tables = entity_tables(entity)
    raw, quarantined = tables.raw, tables.quarantined

    @dg.multi_asset(
        name=f"ingest_{entity}",
        pool=lake_pool(f"ingest_{entity}"),
        outs={
            raw: dg.AssetOut(
                description=f"The {entity} of each UTC day as the source has them, validated, "
                "deduplicated by id and (messages) with personal data redacted.",
                kinds={"parquet"},
                metadata=tables.raw_table.metadata(),
                is_required=False,
            ),
            quarantined: dg.AssetOut(
                description=f"{entity.capitalize()} records that failed validation, with the reason.",
                kinds={"parquet"},
                metadata=tables.quarantined_table.metadata(),
                is_required=False,
            ),
        },
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingest",
        can_subset=True,
        check_specs=[
            dg.AssetCheckSpec(
                ACCOUNTED,
                asset=raw,
                blocking=True,
                description="Per source file or NocoDB table: records read = raw + quarantined + duplicates dropped.",
            )
        ],
    )
    @fails_clearly
    def ingest(
        context: dg.AssetExecutionContext, source: SourceResource, lake: LakeResource
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        window = context.partition_time_window
        reader = source.open()
        columns = source.columns.get(entity, {})
        redaction, pseudonyms = source.redaction(), source.pseudonyms()
        batches: dict[str, Batch] = {}
        reasons: dict[str, int] = {}
        counts: dict[str, RecordCounts] = {}
        started = time.perf_counter()
        for day, records in read_ahead(reader, entity, days_between(window.start, window.end)):
            start, end = day_window(day)
            batch = normalize(entity, records, start, end, columns, redaction, pseudonym_key=pseudonyms)
            batches[day.isoformat()] = batch
            for reason, count in batch.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
            for name, count in batch.counts.items():
                counts.setdefault(name, RecordCounts()).add(count)
        selected = {key.path[-1] for key in context.selected_asset_keys}
        index = id_index(lake, entity)
        resolution = Resolution()
        if raw in selected:
            resolution = one_row_per_id(index, batches, counts)
        table = pa.concat_tables([b.table for b in batches.values()])
        quarantine = pa.concat_tables([b.quarantine for b in batches.values()])
        duplicates = sum(b.duplicates for b in batches.values())
        seconds = time.perf_counter() - started
        if quarantine.num_rows:
            context.log.warning(
                f"{raw}: set aside {quarantine.num_rows} malformed record(s) in {quarantined}: {reasons}"
            )
        context.log.info(f"{raw}: {table.num_rows} rows from the {reader.name} source in {seconds:.2f}s")
        if raw in selected:
            metadata = {
                "source": reader.name,
                "quarantined": dg.MetadataValue.int(quarantine.num_rows),
                "duplicates_dropped": dg.MetadataValue.int(duplicates),
                "records_by_origin": dg.MetadataValue.json({k: asdict(v) for k, v in sorted(counts.items())}),
                "read_seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(round(table.num_rows / seconds, 1) if seconds else 0.0),
            }
            if resolution.superseded_by or resolution.moved_out:
                metadata["superseded_here"] = dg.MetadataValue.int(len(resolution.superseded_by))
                metadata["moved_from"] = dg.MetadataValue.json(
                    {day: len(ids) for day, ids in sorted(resolution.moved_out.items())}
                )
            yield dg.Output(table, output_name=raw, metadata=metadata)
            # the rows are stored (the IO manager ran): now their index, then the older days they left
            index.write({day: batch_index(index, batch) for day, batch in batches.items()})
            for day, ids in sorted(resolution.moved_out.items()):
                left = index.remove(day, ids)
                context.log.warning(f"{raw} {day}: {len(ids)} id(s) moved to a newer version on another day")
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=raw,
                        partition=day,
                        description=f"rewritten without {len(ids)} id(s) whose newer version is on another day",
                        metadata={
                            "rows": dg.MetadataValue.int(left),
                            "ids_moved_out": dg.MetadataValue.int(len(ids)),
                        },
                    )
                )
        if quarantined in selected:
            yield dg.Output(quarantine, output_name=quarantined, metadata={"reasons": dg.MetadataValue.json(reasons)})
        if context.selected_asset_check_keys:
            yield accounted(raw, counts)

    return ingest


def build_ingest_assets(
    partitions: dg.TimeWindowPartitionsDefinition,
) -> tuple[list[dg.AssetsDefinition], dict[Entity, EntityTables]]:
    """The ingest multi-assets of every entity, and where each entity's records are stored."""
    return [build_ingest_asset(e, partitions) for e in ENTITIES], {e: entity_tables(e) for e in ENTITIES}
