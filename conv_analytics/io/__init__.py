"""Storage: the Parquet lake (local or S3), MongoDB, and DuckDB views over the lake."""
