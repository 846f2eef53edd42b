"""What an asset declares about its storage, next to its own definition: the dagster-duckdb way.

An asset passes `StoredTable(...).metadata()` as its metadata (plain values the UI shows too); the IO
manager reads it back with `StoredTable.of(...)`: the Arrow schema written and read (by its name in
`schemas.py`), the time column that cuts an output into partitions (dagster-duckdb's `partition_expr`)
and, when the asset is mirrored to MongoDB, its collection, natural key and indexes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from dagster import TableColumn, TableSchema

from conv_analytics.schemas import SCHEMAS, schema_name

SCHEMA_KEY = "arrow_schema"  # the schema's name in conv_analytics.schemas
PARTITION_KEY = "partition_expr"  # dagster-duckdb's name for the column that decides a row's partition
MONGO_KEY = "mongo_collection"


def lake_pool(op: str) -> str:
    """The Dagster concurrency pool of an asset op that writes tables to the lake. With a limit of 1 per
    pool in the instance (`concurrency: pools: default_limit: 1`), no two runs write a table at once."""
    return f"lake_{op}"


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
        """Asset metadata: the schema's name, the partition column and the MongoDB collection for the IO
        manager, and the column list for the UI."""
        columns = [TableColumn(f.name, str(f.type)) for f in self.schema]
        metadata: dict[str, Any] = {
            SCHEMA_KEY: schema_name(self.schema),
            PARTITION_KEY: self.time_column,
            "dagster/column_schema": TableSchema(columns=columns),
        }
        if self.mongo is not None:
            metadata[MONGO_KEY] = {
                "name": self.mongo.name,
                "key": list(self.mongo.key),
                "indexes": [list(index) for index in self.mongo.indexes],
            }
        return metadata

    @classmethod
    def of(cls, metadata: Mapping[str, Any] | None) -> StoredTable:
        """The spec an asset declared with `metadata()`."""
        values = {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}
        if SCHEMA_KEY not in values or PARTITION_KEY not in values:
            raise LookupError("this asset declares no StoredTable metadata: the lake IO manager cannot store it")
        mongo = values.get(MONGO_KEY)
        return cls(
            SCHEMAS[values[SCHEMA_KEY]],
            values[PARTITION_KEY],
            MongoCollection(mongo["name"], tuple(mongo["key"]), tuple(tuple(i) for i in mongo["indexes"]))
            if mongo
            else None,
        )


@dataclass(frozen=True)
class EntityTables:
    """Where one source entity's records end up: its raw table and its quarantine (asset names)."""

    raw: str
    raw_table: StoredTable
    quarantined: str
    quarantined_table: StoredTable
