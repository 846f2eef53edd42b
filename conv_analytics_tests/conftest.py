"""Shared fixtures: demo data materialised into temporary lakes, once per test session."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.runner import materialize_range
from conv_analytics.sources.demo import write_demo

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA", REPO.parent / "shared" / "data"))

# A Monday, so the ten demo days hold one whole ISO week (Nov 2-8) and the start of the next.
DEMO_FIRST_DAY = date(2026, 11, 2)
DEMO_DAYS = 10
THREE_DAYS = [DEMO_FIRST_DAY + timedelta(days=i) for i in range(3)]


# `scripts/servers env` exports settings that switch the platform itself (NocoDB source, S3 lake, MongoDB
# mirror) for any code that reads the environment, the CLI and `dagster` subprocesses included. Tests
# reach the servers through require_server only; everything else runs on the embedded defaults.
SERVER_SETTINGS = (
    "NOCODB_URL",
    "NOCODB_API_TOKEN",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "MONGODB_URI",
    "MONGODB_DATABASE",
    "CONV_ANALYTICS_TRANSLATOR",
    "CONV_ANALYTICS_TRANSLATOR_URL",
)
# They are kept in one variable nothing else reads, so pytest-xdist's workers, started from this
# process's environment, find them too.
KEPT_SERVERS = "CONV_ANALYTICS_TEST_SERVERS"
SERVERS = json.loads(os.environ.get(KEPT_SERVERS, "{}")) | {
    name: os.environ.pop(name) for name in SERVER_SETTINGS if name in os.environ
}
os.environ[KEPT_SERVERS] = json.dumps(SERVERS)


def require_server(variable: str, what: str) -> str:
    """The value of a server's environment variable; skip without it, but fail under CI, which starts them."""
    value = SERVERS.get(variable) or os.environ.get(variable, "")
    if not value:
        message = (
            f"{variable} is not set: start the servers with `scripts/servers start` and "
            f"`eval $(scripts/servers env)` to test {what}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return value


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared data sets are not at {SHARED_DATA} (set CONV_ANALYTICS_SHARED_DATA)")
    return SHARED_DATA


def demo_config(home: Path, per_day: int = 12) -> Config:
    config = Config(home=home, start_date=date(2024, 1, 1))
    write_demo(config.source_folder, DEMO_FIRST_DAY + timedelta(days=DEMO_DAYS - 1), DEMO_DAYS, per_day=per_day)
    return config


@pytest.fixture(scope="session")
def three_day_lake(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The daily graph materialised one partition_key at a time for three demo days (the Dagster way).

    Then, as the automation condition does when a next day arrives, each earlier day's categories and
    daily rollup are materialised again to take in the messages sent after midnight.
    """
    config = demo_config(tmp_path_factory.mktemp("three_days"))
    platform = Platform.build(config)
    graph = platform.graph
    for day in THREE_DAYS:
        result = dg.materialize(
            graph.assets, selection=graph.daily_chain, partition_key=day.isoformat(), resources=platform.resources
        )
        assert result.success
    for day in THREE_DAYS[:-1]:
        result = dg.materialize(
            graph.assets,
            selection=[graph.categories.key, graph.rollups["day"].key],
            partition_key=day.isoformat(),
            resources=platform.resources,
        )
        assert result.success
    return config


@pytest.fixture(scope="session")
def ten_day_lake(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """Ten demo days materialised by one single-run backfill over the range."""
    config = demo_config(tmp_path_factory.mktemp("ten_days"))
    keys = [(DEMO_FIRST_DAY + timedelta(days=i)).isoformat() for i in range(DEMO_DAYS)]
    materialize_range(config, Platform.build(config).graph.daily_chain, keys)
    return config
