"""The instance the CLI opens: Dagster's SQLite files, written through connections kept open.

What these show: the events it stores are read back by Dagster's own storage class (the UI's and the
daemon's), also when runs write from another thread; it keeps a bounded number of databases open
however many runs it stores; a run's database is made as Dagster's own method makes it, also when
making it fails halfway; and a dagster.yaml that names another storage is left as it is.
"""

import os
import sqlite3
import threading
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import check_alembic_revision, get_alembic_config

from conv_analytics import instance as instance_module
from conv_analytics.config import Config
from conv_analytics.instance import KeptOpenSqliteEventLogStorage, instance_for

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(partitions_def=DAYS)
def numbers(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"day": context.partition_key})


def open_databases(folder: Path) -> set[str]:
    """The SQLite files under `folder` this process has open."""
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith(".db"):
            names.add(Path(target).name)
    return names


def materialize(instance: dg.DagsterInstance, day: str) -> str:
    result = dg.materialize([numbers], instance=instance, partition_key=day)
    assert result.success
    return result.run_id


def test_events_written_with_kept_open_connections_are_read_by_dagsters_own_storage(tmp_path: Path) -> None:
    config = Config(home=tmp_path)
    instance = instance_for(config)
    assert isinstance(instance.event_log_storage, KeptOpenSqliteEventLogStorage)
    days = [f"2026-01-{day:02d}" for day in range(1, 7)]
    runs = [materialize(instance, day) for day in days[:3]]
    in_thread: list[str] = []  # a connection made in this thread, used from another
    worker = threading.Thread(target=lambda: in_thread.append(materialize(instance, days[3])))
    worker.start()
    worker.join()
    runs += in_thread + [materialize(instance, day) for day in days[4:]]
    assert len(runs) == len(days)

    history = config.instance_dir / "history" / "runs"
    # the index shard and at most OPEN_RUN_SHARDS run databases, whatever the number of runs
    assert "index.db" in open_databases(history)
    assert len(open_databases(history)) <= 1 + KeptOpenSqliteEventLogStorage.OPEN_RUN_SHARDS
    written = {run: len(instance.all_logs(run)) for run in runs}
    instance.dispose()
    assert open_databases(history) == set()

    reader = dg.DagsterInstance.from_config(str(config.instance_dir))  # Dagster's default storage
    assert type(reader.event_log_storage).__name__ == "SqliteEventLogStorage"
    assert {run: len(reader.all_logs(run)) for run in runs} == written
    assert min(written.values()) > 0
    status = reader.get_status_by_partition(
        numbers.key, DAYS.get_partition_keys_in_range(dg.PartitionKeyRange("2026-01-01", "2026-01-06")), DAYS
    )
    assert status is not None and set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    event = reader.get_latest_materialization_event(numbers.key)
    assert event is not None and event.asset_materialization.metadata["day"].value == days[-1]
    reader.dispose()


def run_database(storage: SqliteEventLogStorage, run_id: str = "run-1") -> tuple[list, list, tuple]:
    """A run database's first use through `storage`, then its schema, Alembic revision and journal mode."""
    with storage.run_connection(run_id):
        pass
    con = sqlite3.connect(storage.path_for_shard(run_id))
    try:
        schema = sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(), key=str)
        return (
            schema,
            con.execute("SELECT * FROM alembic_version").fetchall(),
            con.execute("PRAGMA journal_mode").fetchone(),
        )
    finally:
        con.close()


def test_a_run_database_is_made_as_dagsters_own_method_makes_it(tmp_path: Path) -> None:
    ours = run_database(KeptOpenSqliteEventLogStorage(str(tmp_path / "ours")))
    theirs = run_database(SqliteEventLogStorage(str(tmp_path / "theirs")))
    assert ours == theirs
    assert len(ours[0]) > 10 and ours[2] == ("wal",)
    # Dagster's class, opening it, finds it at the head revision (nothing to create or migrate)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'ours' / 'run-1.db'}")
    with engine.connect() as connection:
        current, head = check_alembic_revision(get_alembic_config(sqlite_event_log.__file__), connection)
    engine.dispose()
    assert current == head is not None


def test_a_run_database_whose_making_fails_halfway_is_made_by_dagsters_method(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked() -> None:  # as when another process makes the same database at the same moment
        raise sqlite3.OperationalError("database is locked")

    theirs = run_database(SqliteEventLogStorage(str(tmp_path / "theirs")))
    monkeypatch.setattr(instance_module, "_event_log_revisions", locked)
    # the tables made before the failure are rolled back, and Dagster's method makes them all
    assert run_database(KeptOpenSqliteEventLogStorage(str(tmp_path / "ours"))) == theirs


def test_a_dagster_yaml_naming_another_event_log_is_left_as_it_is(tmp_path: Path) -> None:
    config = Config(home=tmp_path)
    config.instance_dir.mkdir(parents=True)
    (config.instance_dir / "dagster.yaml").write_text(
        "event_log_storage:\n"
        "  module: dagster._core.storage.event_log\n"
        "  class: ConsolidatedSqliteEventLogStorage\n"
        "  config:\n"
        f"    base_dir: {tmp_path / 'events'}\n",
        encoding="utf-8",
    )
    instance = instance_for(config)
    assert type(instance.event_log_storage).__name__ == "ConsolidatedSqliteEventLogStorage"
    materialize(instance, "2026-01-01")
    assert (tmp_path / "events" / "event_log.db").is_file()
    instance.dispose()
