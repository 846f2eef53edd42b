"""The automation conditions over the real asset graph, evaluated in process tick by tick.

Days are "materialised" as runless events of the whole daily chain, in the order a run writes them, and
`dg.evaluate_automation_conditions` says what the automation sensor would request on each tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from conv_analytics.config import Config
from conv_analytics.dates import days_in
from conv_analytics.definitions import Platform
from conv_analytics.instance import instance_for
from conv_analytics_tests.platform_support import asset_graph

START = date(2026, 1, 1)
GRAPH = asset_graph(START)
NOW = datetime(2026, 3, 18, 12, tzinfo=timezone.utc)  # a Wednesday: the week of March 16 is in progress
WEEKLY, MONTHLY = GRAPH.rollups["week"].key, GRAPH.rollups["month"].key
DAILY, CATEGORIES, REPORT = GRAPH.rollups["day"].key, GRAPH.categories.key, GRAPH.report.key


class Ticks:
    """The automation sensor's ticks over one instance, its cursor carried from tick to tick."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs = defs
        self.instance = instance
        self.cursor = None

    def __call__(self) -> dg.EvaluateAutomationConditionsResult:
        result = dg.evaluate_automation_conditions(self.defs, self.instance, evaluation_time=NOW, cursor=self.cursor)
        self.cursor = result.cursor
        return result

    def materialise(self, keys: Iterable[dg.AssetKey], days: Iterable[date]) -> None:
        for day in days:
            for key in keys:
                self.instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day.isoformat()))

    def load(self, first: date, last: date) -> None:
        """What a sensor run over the days writes: the daily chain, day by day."""
        self.materialise(GRAPH.daily_chain, days_in(first, last))


def requested(result: dg.EvaluateAutomationConditionsResult, key: dg.AssetKey) -> set[str | None]:
    return set(result.get_requested_partitions(key))


def assets_requested(result: dg.EvaluateAutomationConditionsResult) -> int:
    """Asset partitions requested (the daily freshness checks are requested on their own schedule)."""
    return sum(r.true_subset.size for r in result.results if isinstance(r.key, dg.AssetKey))


@pytest.fixture
def ticks(tmp_path: Path):
    defs = Platform.build(Config(home=tmp_path, start_date=START)).definitions()
    with dg.instance_for_test() as instance:
        tick = Ticks(defs, instance)
        assert assets_requested(tick()) == 0  # the first tick only starts the cursor
        yield tick


def test_an_old_week_is_requested_once_all_its_days_exist(ticks: Ticks) -> None:
    ticks.load(date(2026, 2, 1), date(2026, 2, 14))
    first = ticks()
    # Feb 2-8 is whole; Feb 9-15 lacks its Sunday and Jan 26 - Feb 1 its first six days; February lacks days
    assert requested(first, WEEKLY) == {"2026-02-02"}
    assert requested(first, MONTHLY) == set()
    assert requested(first, REPORT) == {None}
    # the run wrote each day's categories and rollups after what they read: nothing daily again
    assert requested(first, CATEGORIES) == requested(first, DAILY) == set()
    # the old week's topic model is fitted too
    assert requested(first, GRAPH.topic_model.key) == {"2026-02-02"}

    assert assets_requested(ticks()) == 0  # requested once, not on every tick

    ticks.load(date(2026, 2, 15), date(2026, 2, 28))
    second = ticks()
    # Feb 23 - Mar 1 still lacks March 1
    assert requested(second, WEEKLY) == {"2026-02-09", "2026-02-16"}
    assert requested(second, MONTHLY) == {"2026-02-01"}
    assert requested(second, REPORT) == {None}


def test_a_changed_day_requests_its_week_month_and_previous_day_again(ticks: Ticks) -> None:
    ticks.load(date(2026, 2, 1), date(2026, 2, 28))
    ticks()
    weeks = [date(2026, 2, 2), date(2026, 2, 9), date(2026, 2, 16)]
    ticks.materialise([WEEKLY], weeks)
    ticks.materialise([MONTHLY], [date(2026, 2, 1)])
    ticks.materialise([REPORT], [])
    ticks.instance.report_runless_asset_event(dg.AssetMaterialization(REPORT))
    assert requested(ticks(), WEEKLY) == set()  # built: nothing to do until a day changes

    ticks.load(date(2026, 2, 10), date(2026, 2, 10))  # an edit collected again
    changed = ticks()
    assert requested(changed, WEEKLY) == {"2026-02-09"}
    assert requested(changed, MONTHLY) == {"2026-02-01"}
    # Feb 9's conversations may continue into Feb 10's messages
    assert requested(changed, CATEGORIES) == {"2026-02-09"}
    assert requested(changed, DAILY) == {"2026-02-09"}
    assert requested(changed, REPORT) == {None}


def test_the_current_week_and_month_are_never_requested(ticks: Ticks) -> None:
    ticks.load(date(2026, 3, 1), NOW.date())
    result = ticks()
    # March 2-8 and 9-15 are whole; the week of March 16 and March itself are not over
    assert requested(result, WEEKLY) == {"2026-03-02", "2026-03-09"}
    assert requested(result, MONTHLY) == set()
    assert "2026-03-16" not in GRAPH.partitions.weekly.get_partition_keys(current_time=NOW)


def test_automation_runs_by_default_on_the_projects_instance(tmp_path: Path) -> None:
    config = Config(home=tmp_path, start_date=START)
    defs = Platform.build(config).definitions()
    sensor = defs.resolve_sensor_def("automation")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == Config.automation_seconds.default_value
    # it covers every asset, so Dagster adds no default sensor of its own (which would start stopped)
    graph = defs.resolve_asset_graph()
    assert sensor.asset_selection.resolve(graph) == graph.get_all_asset_keys()
    with instance_for(config) as instance:
        assert instance.auto_materialize_enabled and instance.auto_materialize_use_sensors
        assert not instance.telemetry_enabled
