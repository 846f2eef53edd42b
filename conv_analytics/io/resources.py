"""The lake as a Dagster resource: where it lives comes from the configuration, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import dagster as dg
import duckdb
from dagster_aws.s3 import S3Resource

from conv_analytics.config import Config
from conv_analytics.io import query
from conv_analytics.io.lake import ParquetLake, S3Settings
from conv_analytics.resources import setting_field


class LakeResource(dg.ConfigurableResource):
    """The Parquet lake: a local folder (the embedded default) or s3://bucket/prefix."""

    root: str
    s3_endpoint_url: str = setting_field(Config.s3_endpoint_url)
    aws_region: str = setting_field(Config.aws_region)
    s3_sse: str = setting_field(Config.s3_sse)
    s3_sse_kms_key_id: str = setting_field(Config.s3_sse_kms_key_id)
    # Explicit S3 credentials/profile the dagster-aws way; without it, the usual AWS chain (boto3 session).
    s3: S3Resource | None = None

    def lake(self) -> ParquetLake:
        if not self.root.startswith("s3://"):
            return ParquetLake.open(self.root)
        settings = replace(self._s3_settings(), sse=self.s3_sse, sse_kms_key_id=self.s3_sse_kms_key_id)
        return ParquetLake.open(self.root, s3=settings)

    def _s3_settings(self) -> S3Settings:
        if self.s3 is None:
            return S3Settings.resolve(self.s3_endpoint_url, self.aws_region)
        endpoint = self.s3.endpoint_url or self.s3_endpoint_url
        region = self.s3.region_name or self.aws_region
        if self.s3.aws_access_key_id and self.s3.aws_secret_access_key:
            return S3Settings(
                endpoint,
                region,
                self.s3.aws_access_key_id,
                self.s3.aws_secret_access_key,
                self.s3.aws_session_token or "",
            )
        return S3Settings.resolve(endpoint, region, self.s3.profile_name or "")

    def duckdb(self, assets: Sequence[str] | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per asset of the lake (of `assets` only, when given)."""
        return query.connect(self.lake(), assets=assets)


def lake_resource(config: Config) -> LakeResource:
    """The lake of a configuration: <home>/lake, CONV_ANALYTICS_LAKE_URL or the S3 bucket."""
    from conv_analytics.resources import configured

    return configured(LakeResource, config, root=config.lake_root)
