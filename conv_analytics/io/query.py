"""DuckDB over the lake: one view per asset, so analysts query tables, not file paths.

On S3, DuckDB reads through an fsspec (s3fs) file system registered on the connection, with the
lake's endpoint and credentials: DuckDB's own httpfs extension would have to be downloaded at run
time (no wheel on PyPI matches DuckDB 2.0), which this platform never does.
"""

from __future__ import annotations

import duckdb

from conv_analytics.io.lake import ParquetLake


def quote_identifier(name: str) -> str:
    """A name as a DuckDB identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A path or URL as a DuckDB string literal (a view's definition cannot take a bound parameter)."""
    return "'" + text.replace("'", "''") + "'"


def connect(lake: ParquetLake, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per asset present in the lake (hive `date=` column included)."""
    con = duckdb.connect(database)
    if lake.s3 is not None:
        con.register_filesystem(lake.s3.fsspec())
    for asset in lake.assets():
        if not lake.keys(asset):
            continue
        con.execute(
            f"CREATE OR REPLACE VIEW {quote_identifier(asset)} AS SELECT * FROM read_parquet("
            f"{quote_literal(lake.url_of(asset))}, hive_partitioning = true, union_by_name = true)"
        )
    return con
