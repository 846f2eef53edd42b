"""The one Definitions of the platform: the whole asset graph, its resources, sensors and checks."""

from __future__ import annotations

import json

import dagster as dg

from conv_analytics.assets.categorise import conversation_categories
from conv_analytics.assets.enrich import enriched_messages
from conv_analytics.assets.ingest import ingest_conversations, ingest_messages
from conv_analytics.assets.report import ReportsResource, analytics_report
from conv_analytics.assets.rollups import daily_rollups, monthly_rollups, weekly_rollups
from conv_analytics.categorize.resource import CategorizerResource
from conv_analytics.checks import reconciliation_checks
from conv_analytics.config import Config
from conv_analytics.io.manager import LakeIOManager
from conv_analytics.io.mongo import MongoResource
from conv_analytics.io.resources import LakeResource
from conv_analytics.sensors import nocodb_changes
from conv_analytics.sources import SourceResource
from conv_analytics.sources.nocodb import NocoDBResource


def build_resources(config: Config) -> dict[str, object]:
    """Resources for a configuration; tests pass their own Config (a temporary home, say)."""
    lake = LakeResource(root=config.lake_root, s3_endpoint_url=config.s3_endpoint_url, aws_region=config.aws_region)
    nocodb = NocoDBResource.from_config(config, token_as_env_var=True)
    return {
        "lake": lake,
        "nocodb": nocodb,
        "io_manager": LakeIOManager(lake=lake, mongo=MongoResource.from_config(config)),
        "source": SourceResource(
            files_dir=str(config.source_folder),
            columns_json=json.dumps(config.columns) if config.columns else "",
            nocodb=nocodb,
        ),
        "reports": ReportsResource(folder=str(config.reports_dir)),
        "categorizer": CategorizerResource(models=str(config.models or ""), device=config.device),
    }


ASSETS = [
    ingest_conversations,
    ingest_messages,
    enriched_messages,
    conversation_categories,
    daily_rollups,
    weekly_rollups,
    monthly_rollups,
    analytics_report,
]

CONFIG = Config.from_env()

defs = dg.Definitions(
    assets=ASSETS,
    resources=build_resources(CONFIG),
    sensors=[nocodb_changes],
    # NocoDB reconciliation only where NocoDB is the source
    asset_checks=reconciliation_checks if CONFIG.nocodb_url else [],
)
