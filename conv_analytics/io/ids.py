"""The id index of the raw tables: on which day each conversation or message id is stored, and its version.

One id, one row: a record whose id is already stored on another day replaces it there only when it
is the newer version (`sources.base.Version`), and then moves to the day of its own timestamp. The
index is what makes that cheap to decide: a small Parquet file per raw asset and day,
`<lake>/_ids/<asset>/date=YYYY-MM-DD/part-0.parquet` (id, time, change time, place), written with its
partition and replaced as atomically. A day written before the index existed is read from its raw
partition instead (ids and times, no version: any record with a version is newer).

`resolve` is the decision, free of any store: given the records a run read (by day) and the index
entries of the days it does not write, it says which rows each day keeps and which ids leave older
partitions. Because a version belongs to the record, not to the run, running one day again, a range,
or the days in another order ends with the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from conv_analytics.io.lake import ParquetLake
from conv_analytics.sources.base import NEVER, Version

INDEX_FOLDER = "_ids"  # a lake folder, not an asset: `ParquetLake.assets` skips names starting with "_"
TIME = pa.timestamp("us", tz="UTC")
INDEX_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("time", TIME),
        pa.field("changed", TIME),  # null: the source gave no change time
        pa.field("place", pa.string()),
    ]
)


def index_name(asset: str) -> str:
    """The lake path, under the root, of an asset's id index (a partitioned table like any asset)."""
    return f"{INDEX_FOLDER}/{asset}"


def index_table(
    ids: pa.Array | pa.ChunkedArray, times: pa.Array | pa.ChunkedArray, versions: pa.Table | None
) -> pa.Table:
    """The index rows of one day's raw table: its id and time columns, and the versions of its rows
    (`sources.base.versions_table`; None for rows without a version)."""
    if versions is None:
        versions = pa.table({"changed": pa.nulls(len(ids), TIME), "place": pa.array([""] * len(ids), pa.string())})
    return pa.Table.from_arrays(
        [ids.cast(pa.string()), times.cast(TIME), versions.column("changed").cast(TIME), versions.column("place")],
        schema=INDEX_SCHEMA,
    )


def versions_of(index: pa.Table) -> list[Version]:
    """The versions of index rows (back from `index_table`)."""
    changed = index.column("changed").to_pylist()
    return [Version(c or NEVER, p or "") for c, p in zip(changed, index.column("place").to_pylist(), strict=True)]


@dataclass
class Resolution:
    """What one id per row means for a run: per day read, the row positions to keep; per older day,
    the ids that leave it (a newer version is on another day)."""

    keep: dict[str, list[int]] = field(default_factory=dict)
    dropped: dict[str, list[int]] = field(default_factory=dict)  # row positions superseded, per day read
    moved_out: dict[str, list[str]] = field(default_factory=dict)  # older day -> ids leaving it
    superseded_by: dict[str, str] = field(default_factory=dict)  # id dropped here -> the day that keeps it


def resolve(read: Mapping[str, pa.Table], stored: pa.Table, stored_days: Sequence[str]) -> Resolution:
    """Keep each id once: its newest version; ties go to the later read (a stored row is the earliest).

    `read`: day -> index rows of the records read for that day (`index_table`); `stored`: index rows
    of other days with `stored_days` their day, for the ids that were read.
    """
    days = sorted(read)
    result = Resolution(keep={day: list(range(read[day].num_rows)) for day in days})
    columns = [read[day].column("id") for day in days] + [stored.column("id")]
    everything = pa.chunked_array([c for column in columns for c in column.chunks], pa.string())
    counts = pc.value_counts(everything)
    contested = set(pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1)).to_pylist())
    if not contested:
        return result
    candidates: dict[str, list[tuple[tuple[Version, int], str, int]]] = {}
    for rank, (day, table) in enumerate(((d, read[d]) for d in days), start=1):
        positions = pc.indices_nonzero(pc.is_in(table.column("id"), pa.array(sorted(contested)))).to_pylist()
        picked = table.take(pa.array(positions, pa.int64()))
        for position, key, version in zip(positions, picked.column("id").to_pylist(), versions_of(picked), strict=True):
            candidates.setdefault(key, []).append(((version, rank), day, position))
    for key, version, day in zip(stored.column("id").to_pylist(), versions_of(stored), stored_days, strict=True):
        if key in contested:
            candidates.setdefault(key, []).append(((version, 0), day, -1))
    for key, entries in candidates.items():
        winner = max(entries, key=lambda e: e[0])
        for entry in entries:
            if entry is winner:
                continue
            _, day, position = entry
            if position < 0:
                result.moved_out.setdefault(day, []).append(key)
            else:
                result.dropped.setdefault(day, []).append(position)
                result.superseded_by[key] = winner[1]
    for day, positions in result.dropped.items():
        gone = set(positions)
        result.keep[day] = [i for i in result.keep[day] if i not in gone]
    return result


class IdIndex:
    """The index of one raw asset in the lake: lookups by id, and the day files kept beside the partitions."""

    def __init__(self, lake: ParquetLake, asset: str, schema: pa.Schema, id_column: str, time_column: str) -> None:
        self.lake = lake
        self.asset = asset
        self.schema = schema
        self.name = index_name(asset)
        self.id_column = id_column
        self.time_column = time_column

    def lookup(self, ids: pa.Array, skip: set[str]) -> tuple[pa.Table, list[str]]:
        """Index rows of `ids` stored on days other than `skip`, with the day of each row: one
        multi-threaded scan of the index files (their `date=` folders give the day), plus the raw
        partitions of days that have no index file yet."""
        days = set(self.lake.keys(self.asset)) - skip  # a day is stored when its raw partition is
        indexed = days & set(self.lake.keys(self.name))
        wanted = pc.unique(ids.cast(pa.string()))
        tables, labels = [], []
        if indexed:
            # the ids alone first: most runs find none of theirs elsewhere, and then read nothing more
            with self.lake.reading(f"the id index of {self.asset}"):
                hits = self._dataset(indexed).to_table(columns=["date"], filter=pc.field("id").isin(wanted))
                hit_days = set(pc.unique(hits.column("date")).to_pylist())
                found = self._dataset(hit_days).to_table(filter=pc.field("id").isin(wanted)) if hit_days else None
            if found is not None:
                tables.append(found.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA))
                labels += found.column("date").to_pylist()
        for day in sorted(days - indexed):
            day_index = self.day(day, indexed)
            found = day_index.filter(pc.is_in(day_index.column("id"), wanted))
            tables.append(found)
            labels += [day] * found.num_rows
        return (pa.concat_tables(tables) if tables else INDEX_SCHEMA.empty_table()), labels

    def _dataset(self, days: set[str]) -> ds.Dataset:
        """The index files of these days as one dataset, with each row's day (its `date=` folder)."""
        return ds.dataset(
            [self.lake.partition_path(self.name, day) for day in sorted(days)],
            filesystem=self.lake.fs,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive"),
            partition_base_dir=f"{self.lake.root}/{self.name}",
        )

    def day(self, key: str, indexed: set[str] | None = None) -> pa.Table:
        """One day's index, from its file, or from the raw partition where the day has no index yet."""
        if key in (indexed if indexed is not None else set(self.lake.keys(self.name))):
            return self.lake.read(self.name, [key], INDEX_SCHEMA)
        raw = self.lake.read(self.asset, [key], self.schema, columns=[self.id_column, self.time_column])
        return index_table(raw.column(self.id_column), raw.column(self.time_column), None)

    def write(self, days: dict[str, pa.Table]) -> None:
        """Replace the index files of these days (in parallel, each atomically, like the partitions)."""
        self.lake.write_partitions(self.name, days, INDEX_SCHEMA)

    def remove(self, key: str, ids: Sequence[str]) -> int:
        """Rewrite one raw partition and its index without `ids`; returns the rows left there."""
        gone = pa.array(sorted(set(ids)), pa.string())
        index = self.day(key)
        table = self.lake.read(self.asset, [key], self.schema)
        kept = table.filter(pc.invert(pc.is_in(table.column(self.id_column).cast(pa.string()), gone)))
        self.lake.write(self.asset, key, kept, self.schema)
        self.write({key: index.filter(pc.invert(pc.is_in(index.column("id"), gone)))})
        return kept.num_rows
