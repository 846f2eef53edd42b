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

import functools
import os
import socket
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from filelock import FileLock
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import Connection, Engine

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


@functools.cache
def _event_log_revisions() -> ScriptDirectory:
    """Alembic's revision scripts of Dagster's SQLite event log, read once a process, their map built."""
    scripts = ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))
    scripts.get_current_head()  # builds the revision map now: afterwards it is only read
    return scripts


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (a database per run, plus the index shard), with its connections
    kept open from one event to the next.

    Dagster's own class makes an engine and a connection for every event and closes them after, and
    closing a WAL database's last connection checkpoints it and deletes its WAL file: 6.3 ms an event
    on this project's test machine, 2.7 ms with the connection kept (sqlalchemy/sqlalchemy#7490). A run
    of 3 million messages stores about 2,600 events. The files and tables are Dagster's own, so the UI
    and the daemon, which open them with Dagster's class, read what this one writes. The index shard
    and the latest OPEN_RUN_SHARDS run databases stay open.
    """

    OPEN_RUN_SHARDS = 2

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # set first: Dagster's __init__ already connects (to create the index shard)
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # Dagster's hook: each read or write
        with self._db_lock, self._engine(shard).connect() as connection, connection.begin():
            yield connection

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():  # a forked child opens its own connections
            self._engines, self._engines_pid = OrderedDict(), os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[: max(0, len(runs) - self.OPEN_RUN_SHARDS)]:
            self._engines.pop(name).dispose()
        return engine

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:  # Dagster's hook: a database's first use
        """A new run database as Dagster's method makes it (its tables and indexes, WAL, Alembic's head
        revision), in one transaction and with the revision scripts read once a process: Dagster's method
        reads all of them twice for every database and commits each table on its own, 46-48 ms a run here
        against 5 ms. The index shard, a database that exists already and one that another process is
        creating at the same moment are left to Dagster's method (which retries the last)."""
        path = engine.url.database
        if for_index_shard or not path or os.path.exists(path):
            super()._initdb(engine, for_index_shard)
            return
        try:
            with engine.connect() as connection:
                connection.execute(text("PRAGMA journal_mode=WAL;"))
                connection.exec_driver_sql("BEGIN")  # pysqlite would commit each CREATE on its own
                SqlEventLogStorageMetadata.create_all(connection)
                MigrationContext.configure(connection).stamp(_event_log_revisions(), "head")
                connection.commit()
        except (exc.DatabaseError, sqlite3.DatabaseError):
            super()._initdb(engine, for_index_shard)

    def _close(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close()  # before its files go
        super().wipe()

    def dispose(self) -> None:
        self._close()
        super().dispose()


class KeptOpenSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage, its event log being KeptOpenSqliteEventLogStorage."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data)
        self._event_log_storage = KeptOpenSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> KeptOpenSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


DEFAULT_STORAGE = ("dagster._core.storage.sqlite_storage", "DagsterSqliteStorage")


def instance_for(config: Config) -> dg.DagsterInstance:
    """The persistent instance of the configuration (DAGSTER_HOME, else <home>/dagster): the UI's too.

    Where its dagster.yaml leaves the storage to Dagster's SQLite default, the instance stores its events
    through KeptOpenSqliteStorage: same files, fewer connections. Runs of this machine left STARTED by a
    process that is gone are marked failed first."""
    ref = InstanceRef.from_dir(str(prepare_instance_dir(config)))
    storage = ref.storage_data
    if storage is not None and (storage.module_name, storage.class_name) == DEFAULT_STORAGE:
        kept_open = ConfigurableClassData(__name__, KeptOpenSqliteStorage.__name__, storage.config_yaml)
        ref = ref._replace(storage_data=kept_open)
    instance = dg.DagsterInstance.from_ref(ref)
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
