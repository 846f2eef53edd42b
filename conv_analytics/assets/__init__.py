"""The asset graph: source -> raw -> enriched -> categories -> rollups -> report.

Assets are built for the partitions of one start date (a setting), so they come from `build_asset_graph`
when the definitions load; each asset module holds its factory and what it declares about storage.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from conv_analytics.analytics.report import ReportTables
from conv_analytics.assets.categorize import build_categories_asset
from conv_analytics.assets.enrich import ENRICHED, build_enrich_asset
from conv_analytics.assets.ingest import build_ingest_assets
from conv_analytics.assets.report import build_report_asset, report_tables
from conv_analytics.assets.rollups import build_rollup_assets
from conv_analytics.assets.topics import build_intent_model, build_topic_model
from conv_analytics.io.tables import EntityTables
from conv_analytics.partitions import Partitions
from conv_analytics.sources.base import Entity


@dataclass(frozen=True)
class AssetGraph:
    """Every asset of the platform, with the groups the runner, the sensor and the reports need."""

    partitions: Partitions
    ingest: list[dg.AssetsDefinition]
    entities: dict[Entity, EntityTables]
    intent_model: dg.AssetsDefinition
    enriched: dg.AssetsDefinition
    topic_model: dg.AssetsDefinition
    categories: dg.AssetsDefinition
    rollups: dict[str, dg.AssetsDefinition]  # day | week | month
    report: dg.AssetsDefinition
    report_tables: ReportTables

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [
            *self.ingest,
            self.intent_model,
            self.enriched,
            self.topic_model,
            self.categories,
            *self.rollups.values(),
            self.report,
        ]

    @property
    def daily_chain(self) -> list[dg.AssetKey]:
        """The daily assets in order, materialised together for a day or range of days."""
        keys = [key for asset in self.ingest for key in asset.keys]
        return [*keys, self.enriched.key, self.categories.key, self.rollups["day"].key]


def build_asset_graph(partitions: Partitions) -> AssetGraph:
    ingest, entities = build_ingest_assets(partitions.daily)
    conversations, messages = entities["conversations"], entities["messages"]
    raw_messages = dg.AssetKey(messages.raw)
    intent_model = build_intent_model(partitions, raw_messages, messages.raw_table)
    enriched = build_enrich_asset(partitions.daily, raw_messages, intent_model.key)
    topic_model = build_topic_model(partitions, enriched.key, ENRICHED)
    categories = build_categories_asset(partitions.daily, dg.AssetKey(conversations.raw), enriched.key, topic_model.key)
    history = (conversations.raw, categories.key.path[-1])  # who was seen when, most complete first
    rollups = build_rollup_assets(partitions, categories.key, history)
    tables = report_tables(rollups, categories, topic_model)
    return AssetGraph(
        partitions=partitions,
        ingest=ingest,
        entities=entities,
        intent_model=intent_model,
        enriched=enriched,
        topic_model=topic_model,
        categories=categories,
        rollups=rollups,
        report=build_report_asset(tables, list(rollups.values())),
        report_tables=tables,
    )
