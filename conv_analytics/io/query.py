"""DuckDB over the lake: one view per asset, so analysts query tables, not file paths.

On S3, DuckDB reads through an fsspec (s3fs) file system registered on the connection, with the
lake's endpoint and credentials: DuckDB's own httpfs extension would have to be downloaded at run
time (no wheel on PyPI matches DuckDB 2.0), which this platform never does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:  # the lake module uses scratch_cursor
    from conv_analytics.io.lake import ParquetLake


def quote_identifier(name: str) -> str:
    """A name as a DuckDB identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def _process_connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@contextmanager
def scratch_cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of the process's one in-memory DuckDB, for a short query over Arrow tables the caller
    registers on it: opening a connection takes 20-40 ms, longer than such a query. Each cursor keeps
    its registrations to itself, so callers in different threads do not meet; closing it drops them."""
    cursor = _process_connection().cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def connect(
    lake: ParquetLake, database: str = ":memory:", assets: Sequence[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per asset present in the lake (hive `date=` column included), or
    per asset of `assets` present (listing every asset's partitions costs a step that needs one table).

    Each view reads the list of its partition files, handed to DuckDB as values: no path is written
    into SQL text, and no glob reads a quote, bracket or backslash in a folder's name as a pattern.
    """
    con = duckdb.connect(database)
    if lake.s3 is not None:
        con.register_filesystem(lake.s3.fsspec())
    present = lake.assets()
    for asset in present if assets is None else [a for a in assets if a in present]:
        keys = lake.keys(asset)
        if not keys:
            continue
        files = [lake.url_of(asset, key) for key in keys]
        con.read_parquet(files, hive_partitioning=True, union_by_name=True).create_view(asset)
    return con
