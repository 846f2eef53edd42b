"""Raw conversations and messages, one UTC day a partition, with the records that failed validation kept aside."""

import time

import dagster as dg
import pyarrow as pa

from conv_analytics.partitions import daily_partitions, day_window, days_between
from conv_analytics.sources import SourceResource, normalize
from conv_analytics.sources.base import Entity, SourceError


def build_ingest_asset(entity: Entity) -> dg.AssetsDefinition:
    """One multi-asset per entity: `raw_<entity>` and `quarantined_<entity>` come from the same read."""
    raw, quarantined = f"raw_{entity}", f"quarantined_{entity}"

    @dg.multi_asset(
        name=f"ingest_{entity}",
        outs={
            raw: dg.AssetOut(
                description=f"The {entity} of each UTC day as the source has them, validated, "
                "deduplicated by id and (messages) with personal data redacted.",
                kinds={"parquet"},
            ),
            quarantined: dg.AssetOut(
                description=f"{entity.capitalize()} records that failed validation, with the reason.",
                kinds={"parquet"},
            ),
        },
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingest",
    )
    def ingest(context: dg.AssetExecutionContext, source: SourceResource):
        window = context.partition_time_window
        reader = source.open()
        columns = source.columns.get(entity, {})
        tables, quarantines = [], []
        reasons: dict[str, int] = {}
        duplicates = 0
        started = time.perf_counter()
        for day in days_between(window.start, window.end):
            start, end = day_window(day)
            try:
                batch = normalize(entity, reader.fetch(entity, start, end), start, end, columns)
            except SourceError as exc:
                raise dg.Failure(description=f"{reader.name} source: {exc}") from None
            tables.append(batch.table)
            quarantines.append(batch.quarantine)
            duplicates += batch.duplicates
            for reason, count in batch.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
        table = pa.concat_tables(tables)
        quarantine = pa.concat_tables(quarantines)
        seconds = time.perf_counter() - started
        if quarantine.num_rows:
            context.log.warning(
                f"{raw}: set aside {quarantine.num_rows} malformed record(s) in {quarantined}: {reasons}"
            )
        context.log.info(f"{raw}: {table.num_rows} rows from the {reader.name} source in {seconds:.2f}s")
        yield dg.Output(
            table,
            output_name=raw,
            metadata={
                "source": reader.name,
                "quarantined": dg.MetadataValue.int(quarantine.num_rows),
                "duplicates_dropped": dg.MetadataValue.int(duplicates),
                "read_seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(round(table.num_rows / seconds, 1) if seconds else 0.0),
            },
        )
        yield dg.Output(
            quarantine,
            output_name=quarantined,
            metadata={"reasons": dg.MetadataValue.json(reasons)},
        )

    return ingest


ingest_conversations = build_ingest_asset("conversations")
ingest_messages = build_ingest_asset("messages")
