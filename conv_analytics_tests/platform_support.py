"""The asset graph as the tests reach it: a platform per configuration, and what an asset stores."""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache

import dagster as dg
import pyarrow as pa

from conv_analytics.assets import AssetGraph, build_asset_graph
from conv_analytics.io.tables import StoredTable
from conv_analytics.partitions import Partitions

# The start date the tests' configurations use (demo_config); only partitions depend on it.
TEST_START_DATE = date(2024, 1, 1)

# `dagster asset materialize --config-json` for the in-process executor: no process per step, so a run
# of a few small steps takes seconds instead of the multiprocess executor's half a minute.
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})


@lru_cache(maxsize=4)
def asset_graph(start: date = TEST_START_DATE) -> AssetGraph:
    """The asset graph for partitions from `start`: what the tests read schemas and keys from."""
    return build_asset_graph(Partitions.starting(start))


def stored_table(name: str, graph: AssetGraph | None = None) -> StoredTable:
    """The StoredTable the asset `name` declares in its metadata (schema, time column, MongoDB mirror)."""
    graph = graph or asset_graph()
    key = dg.AssetKey(name)
    for asset in graph.assets:
        if key in asset.specs_by_key:
            return StoredTable.of(asset.specs_by_key[key].metadata)
    raise KeyError(f"no asset {name} in the graph")


def schema_of(name: str, graph: AssetGraph | None = None) -> pa.Schema:
    return stored_table(name, graph).schema


def stored_names(keys: list[dg.AssetKey], graph: AssetGraph | None = None) -> list[str]:
    """The names of those of `keys` whose assets store a table (all of the daily chain, today)."""
    graph = graph or asset_graph()
    names = []
    for key in keys:
        try:
            stored_table(key.path[-1], graph)
        except LookupError:
            continue
        names.append(key.path[-1])
    return names


def history_tables(graph: AssetGraph | None = None) -> tuple[str, ...]:
    """The tables that say who was seen when, most complete first: what the graph's rollups read."""
    graph = graph or asset_graph()
    return (graph.entities["conversations"].raw, graph.categories.key.path[-1])


def check_statuses(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, partitions: dg.PartitionsDefinition
) -> dict[str, set[str]]:
    """The partitions of a partitioned check by status (SUCCEEDED, FAILED, SKIPPED, ...), as the UI's
    partition view reads them (the same cached state its GraphQL resolver loads)."""
    state = instance.event_log_storage.get_asset_check_state([(key, partitions)])[key]
    return {
        status.value: set(subset.value.get_partition_keys())
        for status, subset in state.subsets.items()
        if not isinstance(subset.value, bool) and not subset.value.is_empty
    }
