"""The real `dagster-daemon` over a real NocoDB: an old month loaded late is built with no manual step.

February 2021 (Monday the 1st to Sunday the 28th: four whole ISO weeks and a whole month) is loaded into
a fresh NocoDB base; the daemon runs the project's workspace on a SQLite instance in a temporary home.
Its `nocodb_changes` sensor collects the days, the `automation` sensor (running by default) builds the
weeks, the month, their topic models and the report, and the reconciliation checks record a result for
each day. Sensor intervals are shortened through their settings; Dagster's backfill daemon still ticks
every 30 s, which sets most of the wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from conv_analytics.alerts.freshness import CHECK_NAME as FRESHNESS_CHECK
from conv_analytics.analytics.report import report_path
from conv_analytics.config import Config
from conv_analytics.instance import prepare_instance_dir
from conv_analytics.nocodb.setup import load_jsonl
from conv_analytics_tests.nocodb_support import REPO, client, new_base, server, shared_data
from conv_analytics_tests.platform_support import asset_graph, check_statuses

pytestmark = pytest.mark.integration

FIRST = date(2021, 2, 1)
DAYS = 28
DAY_KEYS = {(FIRST + timedelta(days=i)).isoformat() for i in range(DAYS)}
WEEK_KEYS = {(FIRST + timedelta(weeks=i)).isoformat() for i in range(4)}
GRAPH = asset_graph(FIRST)
WAIT_SECONDS = 900  # generous for a loaded machine; a quiet one takes a few minutes
QUIET_SECONDS = 45  # longer than a backfill daemon iteration and several automation ticks


@pytest.fixture(scope="module")
def february():
    """A NocoDB base holding three conversations a day of February 2021."""
    server()
    for title, tables in new_base("it-daemon"):
        load_jsonl(client(), tables, shared_data() / "dailydialog" / "validation.jsonl", FIRST, DAYS, limit=3 * DAYS)
        yield title


def daemon_environment(config: Config, base: str) -> dict[str, str]:
    url, token = server()
    settings = {
        Config.home: str(config.home),
        Config.dagster_home: str(config.instance_dir),
        Config.start_date: FIRST.isoformat(),
        Config.nocodb_url: url,
        Config.nocodb_api_token: token,
        Config.nocodb_base: base,
        Config.nocodb_requests_per_second: "50",
        Config.nocodb_poll_seconds: "5",
        Config.automation_seconds: "5",
        Config.translator: "none",  # English text; the translation server is not this test's subject
    }
    # Dagster's own: its gRPC calls to the code server wait longer on a loaded machine (default 60 s)
    slow = {"DAGSTER_GRPC_TIMEOUT_SECONDS": "300"}
    return {**os.environ, **slow, **{setting.env: value for setting, value in settings.items()}}


@pytest.fixture
def daemon(february: str, tmp_path: Path) -> Iterator[tuple[Config, Path]]:
    """`dagster-daemon run` on the project's workspace.yaml, stopped (with the runs it started) afterwards."""
    config = Config(home=tmp_path / "home")
    settings = prepare_instance_dir(config) / "dagster.yaml"
    # two runs at a time, as a deployment limits them, so a 2-core machine is not swamped
    instance = yaml.safe_load(settings.read_text(encoding="utf-8"))
    instance.setdefault("concurrency", {})["runs"] = {"max_concurrent_runs": 2}
    settings.write_text(yaml.safe_dump(instance), encoding="utf-8")
    log = tmp_path / "daemon.log"
    command = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=daemon_environment(config, february),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield config, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def missing(instance: dg.DagsterInstance) -> list[str]:
    """What is not built yet, in words; empty once the month, its weeks, days, report and checks are there."""
    wanted = {
        GRAPH.rollups["day"].key: DAY_KEYS,
        GRAPH.rollups["week"].key: WEEK_KEYS,
        GRAPH.rollups["month"].key: {FIRST.isoformat()},
        GRAPH.topic_model.key: WEEK_KEYS,
    }
    out = [
        f"{key.to_user_string()}: {len(keys - instance.get_materialized_partitions(key))} partition(s)"
        for key, keys in wanted.items()
        if not keys <= instance.get_materialized_partitions(key)
    ]
    month = instance.get_latest_materialization_event(GRAPH.rollups["month"].key)
    report = instance.get_latest_materialization_event(GRAPH.report.key)
    if month is None or report is None or report.timestamp < month.timestamp:
        out.append("analytics_report after the month")
    for tables in GRAPH.entities.values():
        key = dg.AssetCheckKey(dg.AssetKey(tables.raw), "matches_nocodb")
        if check_statuses(instance, key, GRAPH.partitions.daily).get("SUCCEEDED", set()) != DAY_KEYS:
            out.append(f"{key.to_user_string()} per day")
    return out


def data_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The runs other than those of the freshness checks alone, which the clock starts, not the data."""
    return [run for run in instance.get_runs() if not _freshness_only(run)]


def _freshness_only(run: dg.DagsterRun) -> bool:
    checks = run.asset_check_selection or set()
    return not run.asset_selection and bool(checks) and all(key.name == FRESHNESS_CHECK for key in checks)


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])


def test_an_old_month_loaded_late_is_built_by_the_daemon(daemon: tuple[Config, Path]) -> None:
    config, log = daemon
    started = time.monotonic()
    with dg.DagsterInstance.from_config(str(config.instance_dir)) as instance:
        left = ["everything"]
        while left and time.monotonic() - started < WAIT_SECONDS:
            time.sleep(5)
            left = missing(instance)
            failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            assert not failed, f"run {failed[0].run_id} failed; daemon log:\n{_tail(log)}"
        built_in = time.monotonic() - started
        assert not left, f"not built after {WAIT_SECONDS}s: {left}; daemon log:\n{_tail(log)}"
        print(f"February 2021 built by the daemon in {built_in:.0f}s")

        # every day's reconciliation recorded per partition, and no other partition touched
        for tables in GRAPH.entities.values():
            key = dg.AssetCheckKey(dg.AssetKey(tables.raw), "matches_nocodb")
            assert check_statuses(instance, key, GRAPH.partitions.daily) == {"SUCCEEDED": DAY_KEYS}
        assert instance.get_materialized_partitions(GRAPH.rollups["week"].key) == WEEK_KEYS
        assert instance.get_materialized_partitions(GRAPH.rollups["day"].key) == DAY_KEYS
        for period, start in (("day", date(2021, 2, 28)), ("week", date(2021, 2, 22)), ("month", FIRST)):
            assert report_path(config.reports_dir, period, start, "html").is_file(), period

        # nothing more is requested once all is built: no run started while the sensors keep ticking
        # (but for the freshness checks, which run on the clock: hourly while yesterday, here in 2026, is missing)
        runs = len(data_runs(instance))
        time.sleep(QUIET_SECONDS)
        assert len(data_runs(instance)) == runs, f"runs started after the month was built:\n{_tail(log)}"
        sensor_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "nocodb_changes"}))
        assert len(sensor_runs) == 1  # the month's days in one single-run backfill
