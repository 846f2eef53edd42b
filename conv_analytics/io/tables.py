"""What an asset declares about its storage, next to its own definition: the dagster-duckdb way.

An asset passes `StoredTable(...).metadata()` as its metadata; the IO manager reads it back with
`StoredTable.of(...)`: the Arrow schema written and read, the time column that cuts an output into
partitions (dagster-duckdb's `partition_expr`), and, when the asset is mirrored to MongoDB, its
collection. The same metadata gives the UI the table's columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from dagster import TableColumn, TableSchema

TABLE_KEY = "conv_analytics/table"


@dataclass(frozen=True)
class MongoCollection:
    """Where a mirrored asset lives in MongoDB: collection, natural key (the `_id`) and query indexes."""

    name: str
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class StoredTable:
    """An asset's table: its schema, the column that decides a row's partition, its MongoDB mirror."""

    schema: pa.Schema
    time_column: str
    mongo: MongoCollection | None = None

    def metadata(self) -> dict[str, Any]:
        """Asset metadata: this spec for the IO manager, the column list and partition column for people."""
        columns = [TableColumn(f.name, str(f.type)) for f in self.schema]
        return {
            TABLE_KEY: self,
            "partition_expr": self.time_column,
            "dagster/column_schema": TableSchema(columns=columns),
            **({"mongo_collection": self.mongo.name} if self.mongo else {}),
        }

    @classmethod
    def of(cls, metadata: Mapping[str, Any] | None) -> StoredTable:
        spec = (metadata or {}).get(TABLE_KEY)
        if not isinstance(spec, StoredTable):
            raise LookupError("this asset declares no StoredTable metadata: the lake IO manager cannot store it")
        return spec


@dataclass(frozen=True)
class EntityTables:
    """Where one source entity's records end up: its raw table and its quarantine (asset names)."""

    raw: str
    raw_table: StoredTable
    quarantined: str
    quarantined_table: StoredTable
