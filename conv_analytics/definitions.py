"""The one Definitions of the platform: the asset graph, its resources, the NocoDB sensor and checks.

Importing this module reads no setting and builds nothing: Dagster calls `defs()` when it loads the
code location, and a bad setting then fails that load with one line naming the variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from conv_analytics.alerts.freshness import build_freshness_checks
from conv_analytics.alerts.sensor import build_failure_alert_sensor
from conv_analytics.assets import AssetGraph, build_asset_graph
from conv_analytics.assets.enrich import EnrichmentResource
from conv_analytics.assets.report import ReportsResource
from conv_analytics.assets.stores import build_mongo_checks
from conv_analytics.assets.topics import TopicDiscoveryResource
from conv_analytics.categorize.resource import CategorizerResource
from conv_analytics.config import Config
from conv_analytics.executors import executor_for
from conv_analytics.io.manager import LakeIOManager
from conv_analytics.io.mongo import MongoResource
from conv_analytics.io.resources import lake_resource
from conv_analytics.nocodb.checks import build_reconciliation_check
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.nocodb.sensor import build_nocodb_sensor
from conv_analytics.partitions import Partitions
from conv_analytics.resources import configured
from conv_analytics.sources.resource import SourceResource


def automation_sensor(interval_seconds: int) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions of every asset, running by default: Dagster's own default
    sensor starts stopped, and nothing after the daily chain was built until someone found the toggle."""
    return dg.AutomationConditionSensorDefinition(
        "automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description="Builds the weeks, months, reports and topic models whose days were materialised or changed.",
    )


def build_resources(config: Config) -> dict[str, object]:
    """Resources for a configuration; tests pass their own Config (a temporary home, say)."""
    lake = lake_resource(config)
    columns = config.raw(Config.columns) if config.columns else ""
    nocodb = configured(NocoDBResource, config, columns_json=columns)
    mongo = configured(MongoResource, config) if config.mongodb_uri else None
    return {
        "lake": lake,
        **({"mongo": mongo} if mongo is not None else {}),
        "nocodb": nocodb,
        "io_manager": LakeIOManager(lake=lake, mongo=mongo, claims_dir=str(config.claims_dir)),
        "source": configured(
            SourceResource,
            config,
            files_dir=str(config.source_folder),
            files_index=str(config.files_index),
            columns_json=columns,
            nocodb=nocodb,
        ),
        "reports": ReportsResource(folder=str(config.reports_dir)),
        "categorizer": configured(CategorizerResource, config),
        "discovery": configured(TopicDiscoveryResource, config),
        "enrichment": configured(EnrichmentResource, config, translations_dir=str(config.translations_dir)),
    }


@dataclass(frozen=True)
class Platform:
    """The asset graph and resources of one configuration: what Dagster loads and the runner executes."""

    config: Config
    graph: AssetGraph
    resources: dict[str, object]

    @classmethod
    def build(cls, config: Config) -> Platform:
        graph = build_asset_graph(Partitions.starting(config.start_date))
        return cls(config, graph, build_resources(config))

    @property
    def checks(self) -> list[dg.AssetChecksDefinition]:
        """NocoDB reconciliation where NocoDB is the source; lake against MongoDB where MongoDB is on."""
        checks = [
            build_reconciliation_check(entity, tables, self.graph.partitions.daily)
            for entity, tables in self.graph.entities.items()
            if self.config.nocodb_url
        ]
        return checks + self.mongo_checks

    @property
    def mongo_checks(self) -> list[dg.AssetChecksDefinition]:
        """`lake_matches_mongodb` of every mirrored asset, where MongoDB is on."""
        return build_mongo_checks(self.graph.assets) if "mongo" in self.resources else []

    def definitions(self) -> dg.Definitions:
        nocodb_on = bool(self.config.nocodb_url)
        checks = self.checks
        freshness = build_freshness_checks(self.graph.daily_chain, self.config.start_date, self.config.fresh_by_hour)
        alerts = [build_failure_alert_sensor(self.config)] if self.config.alert_webhook_url else []
        return dg.Definitions(
            assets=self.graph.assets,
            resources=self.resources,
            sensors=[
                build_nocodb_sensor(
                    self.graph.daily_chain,
                    self.graph.entities,
                    self.config.start_date,
                    nocodb_on,
                    self.config.nocodb_poll_seconds,
                ),
                automation_sensor(self.config.automation_seconds),
                *alerts,
            ],
            asset_checks=[*checks, freshness],
            executor=executor_for(self.config),
        )


@dg.definitions
def defs() -> dg.Definitions:
    return Platform.build(Config.from_env().validated()).definitions()
