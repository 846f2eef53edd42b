"""The IO manager every table asset uses: one Parquet file per partition, written and read as Arrow.

In the manner of dagster-duckdb's IO manager, an output is cut into one slice per partition key by
the asset's time column and each slice replaces its partition, so a single run may write a whole range
(single-run backfills) and a rerun replaces rather than appends.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import PrivateAttr

from conv_analytics import markdown
from conv_analytics.errors import PlatformError
from conv_analytics.failures import fails_clearly, failure
from conv_analytics.io.claims import BusyError, Claims
from conv_analytics.io.lake import WriteStats, json_size
from conv_analytics.io.mongo import MongoResource
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import StoredTable

# Input metadata: the last upstream partition may be absent (a look-ahead day that has not happened yet).
ALLOW_MISSING_LAST = "allow_missing_last_partition"
# Input metadata: partitions never materialised read as no rows (a model version that does not exist yet).
MISSING_READS_EMPTY = "missing_partitions_read_as_empty"
# Input metadata: read only these columns (as dagster-duckdb's `columns`), for a step that needs few of many.
COLUMNS = "columns"
JSON_SIZE_MAX_ROWS = 5_000  # beyond this the JSON size is estimated from an even sample
# Run tag: the machine a run's process works on (its pid is in Dagster's own engine events); see
# conv_analytics.instance.fail_dead_runs.
HOST_TAG = "conv_analytics/host"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _bound(column_type: pa.DataType, moment: datetime) -> pa.Scalar:
    if pa.types.is_date(column_type):
        return pa.scalar(moment.date(), column_type)
    return pa.scalar(moment, column_type)


def split_by_partition(table: pa.Table, time_column: str, windows: dict[str, dg.TimeWindow]) -> dict[str, pa.Table]:
    """Cut `table` into one slice per partition key by the time column; every row must land in one.

    Copies only when it must: one partition takes the table as it is, and rows already in time order
    are cut into zero-copy slices; otherwise each partition's rows are filtered out.
    """
    column = table.column(time_column)
    masks = {
        key: pc.and_(
            pc.greater_equal(column, _bound(column.type, window.start)),
            pc.less(column, _bound(column.type, window.end)),
        )
        for key, window in windows.items()
    }
    counts = {key: pc.sum(mask).as_py() or 0 for key, mask in masks.items()}
    placed = sum(counts.values())
    if placed != table.num_rows:
        raise ValueError(
            f"{table.num_rows - placed} row(s) have a {time_column} outside the partitions being written "
            f"({min(windows)} .. {max(windows)})"
        )
    if len(windows) == 1:
        return {key: table for key in windows}
    if table.num_rows < 2 or pc.all(pc.less_equal(column.slice(0, len(column) - 1), column.slice(1))).as_py():
        slices, offset = {}, 0
        for key in sorted(windows, key=lambda k: windows[k].start):
            slices[key] = table.slice(offset, counts[key])
            offset += counts[key]
        return slices
    return {key: table.filter(mask) for key, mask in masks.items()}


def _preview(table: pa.Table, rows: int = 5) -> str:
    """The first rows as a Markdown table, each value escaped (a channel or label may hold markup)."""
    head = table.slice(0, rows).to_pylist()
    if not head:
        return "_no rows_"
    return markdown.table(table.column_names, ([str(row[n])[:60] for n in table.column_names] for row in head))


def _json_bytes(table: pa.Table) -> int:
    if table.num_rows <= JSON_SIZE_MAX_ROWS:
        return json_size(table)
    step = table.num_rows // JSON_SIZE_MAX_ROWS + 1
    sample = table.take(pa.array(range(0, table.num_rows, step)))
    return int(json_size(sample) * table.num_rows / sample.num_rows)


def storage_metadata(table: pa.Table, stats: list[WriteStats], seconds: float) -> dict[str, object]:
    """Rows, bytes, the JSON size of the same rows (the storage saving), timing and a preview."""
    written = sum(s.bytes for s in stats)
    as_json = _json_bytes(table)
    return {
        "rows": dg.MetadataValue.int(table.num_rows),
        "partitions_written": dg.MetadataValue.int(len(stats)),
        "bytes": dg.MetadataValue.int(written),
        "json_bytes": dg.MetadataValue.int(as_json),
        "parquet_to_json_ratio": dg.MetadataValue.float(round(written / as_json, 4) if as_json else 0.0),
        "write_seconds": dg.MetadataValue.float(round(seconds, 3)),
        "path": dg.MetadataValue.path(stats[0].path if len(stats) == 1 else stats[0].path.rsplit("/", 2)[0]),
        "preview": dg.MetadataValue.md(_preview(table)),
    }


def _windows(context: dg.OutputContext) -> dict[str, dg.TimeWindow]:
    partitions = context.asset_partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    return {key: partitions.time_window_for_partition_key(key) for key in context.asset_partition_keys}


def _wants_pandas(context: dg.InputContext) -> bool:
    """The downstream input is annotated as a pandas DataFrame (or a dagster-pandas frame type)."""
    typing_type = getattr(context.dagster_type, "typing_type", None)
    return typing_type is not None and getattr(typing_type, "__name__", "") == "DataFrame"


def partition_range(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The first and last partition key a run's tags name (None: unpartitioned)."""
    first = tags.get(RANGE_START_TAG, tags.get(PARTITION_TAG))
    return first, tags.get(RANGE_END_TAG, tags.get(PARTITION_TAG))


def written_by(run: dg.DagsterRun, instance: dg.DagsterInstance) -> tuple[list[str], str | None, str | None]:
    """The assets a run materialises (from its execution plan) and its first and last partition key
    (None: unpartitioned)."""
    assets: set[str] = set()
    if run.execution_plan_snapshot_id:
        snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        steps = set(run.step_keys_to_execute) if run.step_keys_to_execute else None
        for step in snapshot.steps:
            if steps is None or step.key in steps:
                assets.update(
                    output.properties.asset_key.path[-1]
                    for output in step.outputs
                    if output.properties is not None and output.properties.asset_key is not None
                )
    return sorted(assets), *partition_range(run.tags)


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores each asset's table as its `StoredTable` metadata says: one Parquet file per partition in
    the lake and, for assets that name a collection while MongoDB is on, the same partitions there.

    Inputs load as a pyarrow Table, or as a pandas DataFrame when the input is annotated so (a team's
    own assets downstream of ours get typed frames: see `conv_analytics.frames`).
    """

    lake: LakeResource
    mongo: MongoResource | None = None
    # Where runs claim the partitions they write (empty: no claims); see conv_analytics.io.claims.
    claims_dir: str = ""
    _claims: Claims | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """At the start of a run: claim the partitions it writes, so that a second run writing any of
        them stops at once, naming this one; tag the run with the machine its process works on."""
        run = context.run
        if not self.claims_dir or run is None:
            return
        assets, first, last = written_by(run, context.instance)
        claims = Claims(Path(self.claims_dir))
        try:
            claims.claim(run.run_id, assets, first, last)
        except BusyError as exc:
            raise failure(exc) from None
        self._claims = claims
        if run.tags.get(HOST_TAG) != socket.gethostname():
            context.instance.add_run_tags(run.run_id, {HOST_TAG: socket.gethostname()})

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._claims is not None:
            self._claims.release()

    @fails_clearly  # a store that fails (or a missing partition) is a Failure with one line
    def handle_output(self, context: dg.OutputContext, obj: pa.Table | None) -> None:
        if obj is None:
            return
        name = context.asset_key.path[-1]
        stored = StoredTable.of(context.definition_metadata)
        lake = self.lake.lake()
        started = time.perf_counter()
        windows = _windows(context) if context.has_asset_partitions else {}
        if windows:
            slices = split_by_partition(obj, stored.time_column, windows)
            stats = lake.write_partitions(name, slices, stored.schema)
        else:
            slices, stats = {}, [lake.write(name, None, obj, stored.schema)]
        context.log.info(f"{name}: wrote {obj.num_rows} rows in {len(stats)} partition(s) to {lake.url}")
        metadata = storage_metadata(obj, stats, time.perf_counter() - started)
        if stored.mongo is not None and self.mongo is not None and self.mongo.enabled and windows:
            metadata.update(self._mirror(context, stored, windows, slices))
        context.add_output_metadata(metadata)

    def _mirror(
        self,
        context: dg.OutputContext,
        stored: StoredTable,
        windows: dict[str, dg.TimeWindow],
        slices: dict[str, pa.Table],
    ) -> dict[str, object]:
        """Replace the same partitions in MongoDB, the operational copy (the lake was written first)."""
        assert self.mongo is not None and stored.mongo is not None
        started = time.perf_counter()
        store = self.mongo.store()
        try:
            documents = sum(store.replace(stored, windows[k].start, windows[k].end, slices[k]) for k in sorted(slices))
        finally:
            store.close()
        seconds = time.perf_counter() - started
        context.log.info(f"wrote {documents} documents to MongoDB {stored.mongo.name} in {seconds:.2f}s")
        return {
            "mongo_collection": dg.MetadataValue.text(stored.mongo.name),
            "mongo_documents": dg.MetadataValue.int(documents),
            "mongo_seconds": dg.MetadataValue.float(round(seconds, 3)),
        }

    @fails_clearly
    def load_input(self, context: dg.InputContext) -> object:
        name = context.asset_key.path[-1]
        stored = StoredTable.of(context.upstream_output.definition_metadata if context.upstream_output else None)
        lake = self.lake.lake()
        keys = sorted(context.asset_partition_keys) if context.has_asset_partitions else None
        options = context.definition_metadata or {}
        if keys and options.get(MISSING_READS_EMPTY):
            present = set(lake.keys(name))
            keys = [key for key in keys if key in present]
        elif keys and options.get(ALLOW_MISSING_LAST) and not lake.exists(name, keys[-1]):
            context.log.info(f"{name} has no partition {keys[-1]} yet: reading without it")
            keys = keys[:-1]
        columns = options.get(COLUMNS)
        unknown = [c for c in columns or () if c not in stored.schema.names]
        if unknown:
            raise PlatformError(
                f"the input {context.name} asks for columns {name} does not have: {', '.join(unknown)} "
                f"(its columns: {', '.join(stored.schema.names)})"
            )
        table = lake.read(name, keys, stored.schema, columns=columns)
        return table.to_pandas(coerce_temporal_nanoseconds=True) if _wants_pandas(context) else table
