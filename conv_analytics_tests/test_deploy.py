"""The production shape with real processes on one machine (`pytest -m deploy` runs these alone).

Postgres storage (deploy/dagster.yaml), the code location served by `dagster code-server start`, the
webserver and the daemon as processes of their own, two Celery workers on a Redis broker, a real NocoDB
as the source. A 7-day backfill of the daily chain is launched through GraphQL as the UI launches it; the
daemon and one worker are killed with SIGKILL mid-backfill and started again; the lake must then equal,
byte for byte, an in-process run of the same days. Chromium renders the lineage and partitions pages, and
rows added to NocoDB start a run through the NocoDB sensor under the daemon.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.nocodb.sensor import NOCODB_RUN_TAGS, Cursor
from conv_analytics.nocodb.setup import load_jsonl
from conv_analytics_tests.conftest import require_server
from conv_analytics_tests.deploy_support import PG_SETTINGS, Shape, wait_for
from conv_analytics_tests.nocodb_support import client, new_base, server, shared_data
from conv_analytics_tests.test_report_demo import CHROMIUM_FLAGS, chromium

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

TODAY = datetime.now(timezone.utc).date()
# also the first partition, so the partitions page lists every day; a Monday, so its week has a model partition
FIRST_DAY = TODAY - timedelta(days=14 + (TODAY - timedelta(days=14)).weekday())
DAYS = [FIRST_DAY + timedelta(days=i) for i in range(7)]
KEYS = [day.isoformat() for day in DAYS]
SENSOR_DAY = TODAY - timedelta(days=3)
PER_DAY = 4
WORKERS = ["worker-a", "worker-b"]


def _settings(home: Path, base: str) -> dict[str, str]:
    url, token = server()
    settings = {name: require_server(name, "the production shape (Postgres)") for name in PG_SETTINGS}
    for name in ("CONV_ANALYTICS_CELERY_BROKER_URL", "CONV_ANALYTICS_CELERY_BACKEND_URL"):
        settings[name] = require_server(name, "the Celery executor (Redis)")
    return {
        **settings,
        "CONV_ANALYTICS_HOME": str(home),
        "CONV_ANALYTICS_START_DATE": FIRST_DAY.isoformat(),
        "CONV_ANALYTICS_TRANSLATOR": "none",
        # a worker killed mid-step hands its step back after this long
        "CONV_ANALYTICS_CELERY_VISIBILITY_TIMEOUT": "45",
        "NOCODB_URL": url,
        "NOCODB_API_TOKEN": token,
        "NOCODB_BASE": base,
        "NOCODB_REQUESTS_PER_SECOND": "20",
    }


def _lake_files(home: Path, assets: list[str]) -> dict[str, bytes]:
    lake = home / "lake"
    return {
        str(path.relative_to(lake)): path.read_bytes()
        for asset in assets
        for path in sorted((lake / asset).rglob("*.parquet"))
    }


def _rows(home: Path, asset: str, key: str) -> tuple[int, int]:
    """(rows, distinct ids) of one partition of an asset (ids: its first column)."""
    table = pq.read_table(home / "lake" / asset / f"date={key}" / "part-0.parquet")
    ids = table.column(0)
    return table.num_rows, len(set(ids.to_pylist()))


@pytest.fixture(scope="module")
def nocodb_base() -> Iterator[tuple[str, object]]:
    server()
    yield from new_base("it-deploy")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, nocodb_base) -> dict[str, str]:
    """The shape's settings, with 7 days of public dialogues loaded into its NocoDB base."""
    base, tables = nocodb_base
    dialogues = shared_data() / "dailydialog" / "validation.jsonl"
    if not dialogues.is_file():
        pytest.skip(f"{dialogues} is missing (set CONV_ANALYTICS_SHARED_DATA)")
    load_jsonl(client(), tables, dialogues, FIRST_DAY, len(DAYS), limit=PER_DAY * len(DAYS))
    return _settings(tmp_path_factory.mktemp("deployed"), base)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> Iterator[ReferenceRun]:
    """The same 7 days materialised in process (what `conv-analytics run` does) into a lake of its own, in a
    process started now that runs while the shape starts and backfills."""
    home = tmp_path_factory.mktemp("reference")
    environment = {**os.environ, **settings, Config.home.env: str(home), Config.executor.env: "in_process"}
    code = (
        "import sys\n"
        "from conv_analytics.config import Config\n"
        "from conv_analytics.definitions import Platform\n"
        "from conv_analytics.runner import materialize_range\n"
        "config = Config.from_env()\n"
        "materialize_range(config, Platform.build(config).graph.daily_chain, sys.argv[1:], log_level='WARNING')\n"
    )
    log = (home / "run.log").open("wb")
    process = subprocess.Popen([sys.executable, "-c", code, *KEYS], env=environment, stdout=log, stderr=log)
    try:
        yield ReferenceRun(home, process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


@dataclass
class ReferenceRun:
    home: Path
    process: subprocess.Popen[bytes]

    def wait(self) -> Path:
        """The reference lake's home, once the run ended well."""
        code = self.process.wait(timeout=900)
        assert code == 0, (self.home / "run.log").read_text(errors="replace")[-3000:]
        return self.home


@pytest.fixture(scope="module")
def shape(
    tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str], reference: ReferenceRun
) -> Iterator[Shape]:
    """The shape up; torn down (its database dropped) after."""
    shape = Shape(tmp_path_factory.mktemp("deploy"), settings)
    try:
        shape.start_code_server()
        for name in WORKERS:
            shape.start_worker(name)
        shape.wait_code_server()
        shape.start_webserver()
        shape.wait_webserver()
        shape.wait_workers(WORKERS)
        yield shape
    finally:
        shape.stop()
        print(f"\nlogs of the production shape: {shape.logs}")


@pytest.fixture(scope="module")
def backfill(shape: Shape) -> dict[str, object]:
    """A 7-day backfill through GraphQL; the daemon and the busy worker are killed mid-way and restarted."""
    started = time.monotonic()
    graph = Platform.build(Config(shape.env)).graph
    # the sensor starts from now: the days loaded above are the backfill's to collect
    shape.set_sensor_cursor("nocodb_changes", Cursor(since=datetime.now(timezone.utc)).dump())
    shape.start_daemon()
    backfill_id = shape.launch_backfill(graph.daily_chain, KEYS, NOCODB_RUN_TAGS)
    instance = shape.instance()

    def busy_worker() -> str | None:
        """The worker running a step of the backfill's run, once a step has started there."""
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        for run in runs:
            for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                metadata = record.dagster_event.engine_event_data.metadata if record.dagster_event else {}
                worker = metadata.get("Celery worker")
                if worker is not None:
                    return str(worker.value).split("@")[0]
        return None

    victim = wait_for("a backfill step on a Celery worker", busy_worker, 600, every=1)
    shape.kill("daemon")
    shape.kill(victim)
    killed_at = time.monotonic() - started
    shape.start_daemon()
    shape.start_worker(victim)
    status = wait_for(
        f"backfill {backfill_id} to end",
        lambda: (s := shape.backfill_status(backfill_id)) not in ("REQUESTED", "CANCELING", "FAILING") and s,
        900,
        every=3,
    )
    return {"id": backfill_id, "status": status, "victim": victim, "killed_at": killed_at, "graph": graph}


def test_the_backfill_on_celery_workers_survives_kill_9_and_matches_the_in_process_run(
    shape: Shape, reference: ReferenceRun, backfill: dict[str, object], record_property
) -> None:
    assert backfill["status"] == "COMPLETED_SUCCESS", f"backfill {backfill['id']} ended {backfill['status']}"
    graph = backfill["graph"]
    names = [key.path[-1] for key in graph.daily_chain]
    home = Path(shape.env["CONV_ANALYTICS_HOME"])
    reference_home = reference.wait()
    # same files, same bytes, as the in-process run of the same days
    deployed, expected = _lake_files(home, names), _lake_files(reference_home, names)
    assert sorted(deployed) == sorted(expected)
    assert len(deployed) == len(names) * len(KEYS)
    different = [path for path in expected if deployed[path] != expected[path]]
    assert not different, f"files differ from the in-process run: {different}"
    # nothing lost, nothing twice: per asset and partition, rows as in the reference and ids unique
    for name in names:
        for key in KEYS:
            rows, distinct = _rows(home, name, key)
            assert (rows, distinct) == _rows(reference_home, name, key), (name, key)
            if name.startswith("raw_"):
                assert rows == distinct, f"{name} {key}: {rows - distinct} duplicated rows"
    raw = sum(_rows(home, graph.entities["conversations"].raw, key)[0] for key in KEYS)
    assert raw == PER_DAY * len(KEYS)
    # Dagster saw every asset partition materialised
    instance = shape.instance()
    for key in graph.daily_chain:
        materialized = instance.get_materialized_partitions(key)
        assert set(KEYS) <= materialized, f"{key.to_user_string()} lacks {sorted(set(KEYS) - materialized)}"
    # the steps ran on the Celery workers, both of them over the run
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": str(backfill["id"])}))
    workers = {
        str(record.dagster_event.engine_event_data.metadata["Celery worker"].value).split("@")[0]
        for run in runs
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if record.dagster_event and "Celery worker" in record.dagster_event.engine_event_data.metadata
    }
    assert workers == set(WORKERS), workers
    record_property("killed", f"daemon and {backfill['victim']} after {backfill['killed_at']:.0f} s")


def _dom_and_screenshot(url: str, folder: Path, name: str, size: str) -> tuple[str, Path]:
    """The DOM after the page's scripts ran, and a screenshot of it (Debian's headless Chromium). The
    timeouts are generous: on a shared 2-core machine at load 35 one page took over 3 minutes."""
    common = [
        chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={folder / 'profile'}",
        "--virtual-time-budget=30000",
        f"--window-size={size}",
    ]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=600, check=True).stdout
    shot = folder / f"{name}.png"
    subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=600, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return dom, shot


@pytest.mark.browser
def test_the_webserver_shows_the_lineage_and_the_backfilled_partitions(
    shape: Shape, backfill: dict[str, object], tmp_path: Path, record_property
) -> None:
    graph = backfill["graph"]
    # as a user who dismissed the community dialog once, which would cover the page
    assert shape.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    # the global lineage with every group expanded (the UI keeps the open groups in `expanded`); wide
    # enough that the nodes are drawn with their full names
    groups = sorted({group for asset in graph.assets for group in asset.group_names_by_key.values()})
    expanded = ",".join(f"global@global:{group}" for group in groups)
    lineage, shot = _dom_and_screenshot(
        f"{shape.url}/asset-groups?expanded={expanded}", tmp_path, "lineage", "3200,1800"
    )
    record_property("lineage_screenshot", str(shot))
    print(f"\nscreenshot of the lineage page: {shot}")
    missing = [key.path[-1] for asset in graph.assets for key in asset.keys if key.path[-1] not in lineage]
    assert not missing, f"asset names missing from the lineage page: {missing}"
    rollups = graph.rollups["day"].key.path[-1]
    url = f"{shape.url}/assets/{rollups}?view=partitions"
    partitions, shot = _dom_and_screenshot(url, tmp_path, "partitions", "1600,2400")
    record_property("partitions_screenshot", str(shot))
    print(f"screenshot of the partitions page: {shot}")
    assert [key for key in KEYS if key not in partitions] == []
    materialized = re.search(r"Materialized \((\d+)\)", partitions)
    assert materialized is not None and int(materialized.group(1)) >= len(KEYS), "the backfill's days are not shown"


def test_rows_added_to_nocodb_start_a_run_through_the_sensor_under_the_daemon(
    shape: Shape, backfill: dict[str, object], nocodb_base
) -> None:
    _, tables = nocodb_base
    started = f"{SENSOR_DAY.isoformat()} 10:00:00+00:00"
    conversation = {
        "conversation_id": "deploy-sensor-1",
        "user_id": "u-sensor",
        "channel": "web",
        "started_at": started,
        "ended_at": started,
        "status": "resolved",
    }
    message = {
        "message_id": "deploy-sensor-1-m1",
        "conversation_id": "deploy-sensor-1",
        "role": "user",
        "text": "Where is my parcel?",
        "sent_at": started,
    }
    client().insert(tables.conversations, [conversation])
    client().insert(tables.messages, [message])
    instance = shape.instance()
    sensor_runs = dg.RunsFilter(tags={"dagster/sensor_name": "nocodb_changes"})

    def finished() -> list[dg.DagsterRun]:
        runs = instance.get_runs(sensor_runs)
        return runs if runs and all(run.is_finished for run in runs) else []

    runs = wait_for("a run started by the NocoDB sensor to finish", finished, 420, every=3)
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs)
    assert all(run.tags.get("conv_analytics/source") == "nocodb" for run in runs)
    home = Path(shape.env["CONV_ANALYTICS_HOME"])
    raw = backfill["graph"].entities["conversations"].raw
    table = pq.read_table(home / "lake" / raw / f"date={SENSOR_DAY.isoformat()}" / "part-0.parquet")
    assert table.column("conversation_id").to_pylist() == ["deploy-sensor-1"]


def test_status_shows_the_runs_and_the_backfill_of_the_postgres_instance(
    shape: Shape, backfill: dict[str, object]
) -> None:
    # the automation sensor queues runs for what the NocoDB sensor's run changed, one asset's after
    # another's, so a moment without unfinished runs can be followed by one more queued (two dry runs of
    # CI found one listed): status is read until it shows an instance that has settled
    instance = shape.instance()
    unfinished = dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES))
    command = [str(Path(sys.executable).parent / "conv-analytics"), "status"]

    def settled_status() -> str | None:
        if instance.get_runs(unfinished):
            return None
        result = subprocess.run(command, env=shape.env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout if "queued runs: 0" in result.stdout else None

    stdout = wait_for("the daemon's runs to finish and status to show none queued", settled_status, 600, every=3)
    assert "dagster instance: postgres" in stdout
    graph = backfill["graph"]
    lines = {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}
    for key in graph.daily_chain:
        assert lines[key.path[-1]][2] == "success", lines[key.path[-1]]
    assert "backfills in progress: 0" in stdout
