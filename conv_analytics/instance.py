"""The Dagster instance under the home: made once under a file lock, and kept clear of runs whose process died.

Dagster creates a SQLite instance's tables and stamps their schema version the first time a process opens
it, with no lock: two processes opening a fresh instance at once can both stamp it (`alembic ... more
than one head`, for good) or both create a table (`table jobs already exists`). So the CLI opens the
instance only after `prepare_instance_dir` has created it, alone, under a lock. Dagster's own CLI
(`dagster asset materialize` with DAGSTER_HOME) opens its storage before it imports any of our code, so
nothing of ours can go first there: prepare a new DAGSTER_HOME with `conv-analytics init` (or any run,
demo, status or ui) before Dagster's CLI uses it; once prepared, concurrent Dagster processes only read
the schema version.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg
from filelock import FileLock

from conv_analytics.config import Config, SettingError
from conv_analytics.io.manager import HOST_TAG, partition_range

INIT_LOCK = ".conv-analytics-init.lock"
INIT_TIMEOUT_SECONDS = 120
# Telemetry off (nothing leaves the machine). Pools: the daemon's queue (`conv-analytics ui`) starts no run
# while another run holding one of its pools (one per table written, `lake_pool`) is in progress, so the
# runs it launches wait for each other instead of being refused by a claim; runs of the CLI do not pass
# through the queue (claims protect them). Run monitoring: the daemon fails runs stuck starting or
# cancelling; runs of a dead process are failed by `fail_dead_runs` on this machine and by the run
# launcher's health checks where it has them (Docker, Kubernetes). Automation conditions are evaluated by
# sensors (the project's `automation` sensor, running by default), also Dagster's default: said here so an
# operator reading the file sees it.
INSTANCE_SETTINGS = """\
telemetry:
  enabled: false
auto_materialize:
  enabled: true
  use_sensors: true
concurrency:
  pools:
    default_limit: 1
    granularity: run
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 60
"""
DEAD_TAG = "conv_analytics/process_gone"


def prepare_instance_dir(config: Config) -> Path:
    """The instance folder, with its dagster.yaml and its storage created once, under a lock."""
    folder = config.instance_dir
    if "?" in str(folder):  # Dagster's SQLite storage URL would read what follows as a query string
        setting = Config.dagster_home if config.dagster_home else Config.home
        raise SettingError(
            f"{setting.env}: Dagster's SQLite storage cannot open {folder} (a '?' in the path): "
            "choose a folder without one"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / INIT_LOCK, timeout=INIT_TIMEOUT_SECONDS):
        settings = folder / "dagster.yaml"
        if not settings.exists() or not settings.read_text(encoding="utf-8").strip():
            settings.write_text(INSTANCE_SETTINGS, encoding="utf-8")
        # opening the instance creates (or migrates) its tables: here, alone
        dg.DagsterInstance.from_config(str(folder)).dispose()
    return folder


def instance_for(config: Config) -> dg.DagsterInstance:
    """The persistent instance of the configuration (DAGSTER_HOME, else <home>/dagster): the UI's too.

    Runs of this machine left STARTED by a process that is gone are marked failed first."""
    instance = dg.DagsterInstance.from_config(str(prepare_instance_dir(config)))
    fail_dead_runs(instance)
    return instance


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: gone all the same
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing a run, as Dagster's executor recorded it (its first engine event)."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value)
    return None


def run_partitions(run: dg.DagsterRun) -> str:
    """The job and partitions of a run, for people."""
    first, last = partition_range(run.tags)
    keys = "" if first is None else f" {first}" if first == last else f" {first}..{last}"
    return f"{run.job_name}{keys}"


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the STARTED runs of this machine (tagged by our IO manager) whose process is gone;
    their ids. Runs of other machines are left to Dagster's run monitoring."""
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host})):
        pid = run_pid(instance, run.run_id)
        if pid is None or _process_alive(pid):
            continue
        instance.add_run_tags(run.run_id, {DEAD_TAG: str(pid)})
        instance.report_run_failed(run, f"the process running it (pid {pid}) is gone: killed or crashed")
        failed.append(run.run_id)
    return failed
