"""The lake and MongoDB hold the same rows: a check per mirrored asset, run with each materialisation.

The IO manager writes the lake first and MongoDB second, so a MongoDB failure in between leaves the
lake ahead until the partition is written again; a moved id leaves an older partition stale in the
lake until that day is rebuilt. Either shows here as a partition whose lake rows and MongoDB documents
differ in number.
"""

import dagster as dg
from dagster import AssetCheckExecutionContext

from conv_analytics.failures import fails_clearly
from conv_analytics.io.mongo import MongoResource, compare_partitions
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import MONGO_KEY, StoredTable

MATCHES_MONGODB = "lake_matches_mongodb"


def mirrored(asset: dg.AssetsDefinition) -> list[tuple[dg.AssetKey, StoredTable]]:
    """The keys of an asset definition that are mirrored to MongoDB, with their storage."""
    return [
        (key, StoredTable.of(metadata))
        for key, metadata in asset.metadata_by_key.items()
        if MONGO_KEY in metadata and isinstance(asset.partitions_def, dg.TimeWindowPartitionsDefinition)
    ]


def build_mongo_check(
    key: dg.AssetKey, stored: StoredTable, partitions: dg.TimeWindowPartitionsDefinition
) -> dg.AssetChecksDefinition:
    """Per partition of the run: the lake's rows equal MongoDB's documents."""
    name = key.path[-1]

    @dg.asset_check(
        asset=key,
        name=MATCHES_MONGODB,
        partitions_def=partitions,
        description=f"Per partition, the rows of {name} in the lake equal its documents in MongoDB.",
    )
    @fails_clearly  # a store that fails is a Failure with its one line
    def lake_matches_mongodb(
        context: AssetCheckExecutionContext, lake: LakeResource, mongo: MongoResource
    ) -> dg.AssetCheckResult:
        window = context.partition_time_window
        keys = partitions.get_partition_keys_in_range(context.partition_key_range)
        store = mongo.store()
        try:
            differ = compare_partitions(lake.lake(), store, name, stored, keys, window.start, window.end)
        finally:
            store.close()
        summary = ", ".join(f"{d.key}: lake {d.lake}, MongoDB {d.mongo}" for d in differ[:10])
        return dg.AssetCheckResult(
            passed=not differ,
            description=f"{len(differ)} of {len(keys)} partition(s) differ: {summary}" if differ else None,
            metadata={
                "partitions": len(keys),
                "differing": dg.MetadataValue.json({d.key: {"lake": d.lake, "mongo": d.mongo} for d in differ}),
            },
        )

    return lake_matches_mongodb


def build_mongo_checks(assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One `lake_matches_mongodb` check per asset mirrored to MongoDB."""
    return [
        build_mongo_check(key, stored, asset.partitions_def)  # type: ignore[arg-type]
        for asset in assets
        for key, stored in mirrored(asset)
    ]
