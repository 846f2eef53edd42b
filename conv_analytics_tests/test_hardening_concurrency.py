"""Concurrent runs and killed runs in one home: never a broken instance, a duplicate row or a stray file.

The concurrent runs are real processes started at the same moment (a barrier per pair), forked from a
server that has imported Dagster and the platform once, so forty of them fit in a couple of minutes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.instance import DEAD_TAG, instance_for, prepare_instance_dir
from conv_analytics.io.claims import BusyError, Claims
from conv_analytics.io.lake import TEMPORARY_GRACE_SECONDS, ParquetLake, remove_stale_temporaries
from conv_analytics.io.tables import lake_pool
from conv_analytics.runner import materialize_range
from conv_analytics.sources.demo import write_demo
from conv_analytics_tests.platform_support import IN_PROCESS, asset_graph, schema_of, stored_names

FIRST_DAY = date(2026, 11, 2)
DAYS = [FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=1)).isoformat()]
PER_DAY = 3
PAIRS = 20
WAVE = 5  # pairs started together: ten processes on a small machine
RAW = ("raw_conversations", "raw_messages", "quarantined_conversations", "quarantined_messages")
BUSY = "another run (id "


def _home(home: Path) -> Config:
    config = Config(home=home, start_date=date(2024, 1, 1))
    # one day more than the runs read: conversations of the last evening end after midnight
    write_demo(config.source_folder, FIRST_DAY + timedelta(days=len(DAYS)), len(DAYS) + 1, per_day=PER_DAY)
    return config


def _environment(config: Config) -> dict[str, str]:
    return {
        Config.home.env: str(config.home),
        Config.start_date.env: config.start_date.isoformat(),
        Config.dagster_home.env: str(config.instance_dir),
    }


def _raw_keys(config: Config) -> list[dg.AssetKey]:
    return [key for asset in Platform.build(config).graph.ingest for key in asset.keys]


def _assert_once_each(config: Config) -> None:
    """Every record of each day's export in the lake once: its raw rows (no id twice) and quarantined rows
    add up to the export's lines."""
    lake = ParquetLake.open(config.lake_root)
    for day in DAYS:
        for entity, column in (("conversations", "conversation_id"), ("messages", "message_id")):
            export = (config.source_folder / f"{entity}-{day}.jsonl").read_text(encoding="utf-8")
            records = [line for line in export.split("\n") if line.strip()]
            raw = lake.read(f"raw_{entity}", [day], schema_of(f"raw_{entity}"))
            quarantined = lake.read(f"quarantined_{entity}", [day], schema_of(f"quarantined_{entity}"))
            ids = raw.column(column).to_pylist()
            assert len(ids) == len(set(ids)), f"an id twice in raw_{entity} {day} of {config.home}"
            assert raw.num_rows + quarantined.num_rows == len(records), f"{entity} {day} of {config.home}"


# --- twenty pairs of concurrent runs into fresh homes ---------------------------------------------------------


def _run_in_child(kind: str, home: str, barrier: multiprocessing.synchronize.Barrier, result: str) -> None:
    """One process of a pair: our runner (what `conv-analytics run` does first: the raw records), or
    `conv-analytics init` then Dagster's own `dagster asset materialize`, both into a fresh home."""
    config = Config(home=Path(home), start_date=date(2024, 1, 1))
    os.environ.update(_environment(config))
    outcome = {"ok": True, "error": ""}
    barrier.wait()
    try:
        if kind == "runner":
            materialize_range(config, _raw_keys(config), DAYS, instance_for(config), log_level="ERROR")
        else:
            from dagster._cli import cli as dagster_cli

            main(["init"], standalone_mode=False)
            select = ",".join(RAW)
            dagster_cli(
                ["asset", "materialize", "-m", "conv_analytics.definitions", "--select", select]
                + ["--partition-range", f"{DAYS[0]}...{DAYS[-1]}", "--config-json", IN_PROCESS],
                standalone_mode=False,
                auto_envvar_prefix="DAGSTER",
            )
    except BaseException as exc:  # noqa: BLE001 - every way a run can end is recorded for the parent
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    Path(result).write_text(json.dumps(outcome), encoding="utf-8")


def _failure_messages(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(
        entry.dagster_event.engine_event_data.error.message
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RESOURCE_INIT_FAILURE)
        if entry.dagster_event and entry.dagster_event.engine_event_data.error
    )


def test_twenty_concurrent_pairs_of_runs_into_fresh_homes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["conv_analytics.definitions", "conv_analytics.runner", "dagster._cli"])
    homes = [_home(tmp_path / f"home{i}") for i in range(PAIRS)]
    outcomes: dict[int, list[dict[str, object]]] = {}
    for wave in range(0, PAIRS, WAVE):
        processes, barriers = [], []  # the parent keeps each barrier alive until its processes end
        for pair in range(wave, min(wave + WAVE, PAIRS)):
            kind = "runner" if pair % 2 == 0 else "dagster"
            barrier = context.Barrier(2)
            barriers.append(barrier)
            for side in range(2):
                result = str(homes[pair].home / f"result-{side}.json")
                process = context.Process(target=_run_in_child, args=(kind, str(homes[pair].home), barrier, result))
                process.start()
                processes.append(process)
        for process in processes:
            process.join(timeout=300)
            assert process.exitcode == 0, f"a run's process ended with {process.exitcode}"
        for pair in range(wave, min(wave + WAVE, PAIRS)):
            outcomes[pair] = [json.loads((homes[pair].home / f"result-{s}.json").read_text()) for s in range(2)]

    both_ran = 0
    for pair, (first, second) in outcomes.items():
        config = homes[pair]
        assert first["ok"] or second["ok"], f"pair {pair}: neither run wrote: {first} {second}"
        instance = instance_for(config)  # the instance opens and works afterwards
        runs = instance.get_runs()
        statuses = sorted(run.status.value for run in runs)
        if first["ok"] and second["ok"]:
            both_ran += 1
            assert statuses == ["SUCCESS", "SUCCESS"], f"pair {pair}: {statuses}"
        else:
            # the second stopped at once: its run failed as it started, naming the other run
            assert statuses == ["FAILURE", "SUCCESS"], f"pair {pair}: {statuses}"
            failed = next(run for run in runs if run.status == dg.DagsterRunStatus.FAILURE)
            other = next(run for run in runs if run.status == dg.DagsterRunStatus.SUCCESS)
            assert f"{BUSY}{other.run_id}) is writing" in _failure_messages(instance, failed.run_id)
            error = str(first["error"] or second["error"])
            # our runner says why in one line; Dagster's CLI says "Materialization failed." (the run says why)
            assert (BUSY in error) if pair % 2 == 0 else ("Materialization failed" in error), error
        _assert_once_each(config)
        status = CliRunner().invoke(main, ["status"], env=_environment(config))
        assert status.exit_code == 0, status.output
    print(f"{PAIRS} pairs: {both_ran} ran one after the other, {PAIRS - both_ran} stopped the second run at once")


# --- another run is writing ------------------------------------------------------------------------------------


def test_claims_overlap_only_on_shared_partitions(tmp_path: Path) -> None:
    first = Claims(tmp_path)
    first.claim("run-a", ["raw_messages", "raw_conversations"], "2026-11-02", "2026-11-04")
    second = Claims(tmp_path)
    with pytest.raises(BusyError, match=r"another run \(id run-a\) is writing raw_messages 2026-11-02..2026-11-04"):
        second.claim("run-b", ["raw_messages"], "2026-11-04", "2026-11-09")
    assert not list((tmp_path / "raw_messages").glob("run-b-*"))  # nothing left of the refused claim
    second.claim("run-b", ["raw_messages"], "2026-11-05", "2026-11-09")  # other days of the same asset
    second.release()
    first.release()
    Claims(tmp_path).claim("run-c", ["raw_messages"], "2026-11-02", "2026-11-09")


def test_a_dead_process_claim_is_stale(tmp_path: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from conv_analytics.io.claims import Claims; "
        "Claims(Path(sys.argv[1])).claim('dead-run', ['raw_messages'], '2026-11-02', '2026-11-02'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    assert len(list((tmp_path / "raw_messages").glob("dead-run-*"))) == 1  # left behind, but unlocked
    Claims(tmp_path).claim("next-run", ["raw_messages"], "2026-11-02", "2026-11-02")
    assert not list((tmp_path / "raw_messages").glob("dead-run-*"))


# --- kill -9 mid-write -----------------------------------------------------------------------------------------

# The child writes the first partition file for real, then stops before renaming it, as a slow disk would.
PAUSED_WRITER = """
import sys, time
from datetime import date
from pathlib import Path
import pyarrow.parquet as pq
from conv_analytics.config import Config
from conv_analytics.instance import instance_for
from conv_analytics.runner import materialize_range
from conv_analytics_tests.test_hardening_concurrency import DAYS, _raw_keys

real_write = pq.write_table
def write_then_stall(table, where, **options):
    real_write(table, where, **options)
    Path(sys.argv[2]).touch()
    time.sleep(600)
pq.write_table = write_then_stall
config = Config(home=Path(sys.argv[1]), start_date=date(2024, 1, 1))
materialize_range(config, _raw_keys(config), DAYS, instance_for(config), log_level="ERROR")
"""


def _wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:] if process.stderr else ""
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.2)


def test_kill_9_mid_write_then_the_next_write(tmp_path: Path) -> None:
    config = _home(tmp_path / "home")
    prepare_instance_dir(config)
    stalled = tmp_path / "stalled"
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSED_WRITER, str(config.home), str(stalled)],
        cwd=Path(__file__).resolve().parents[1],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(stalled, child)
        lake_dir = Path(config.lake_root)
        temporaries = sorted(lake_dir.rglob("*.tmp"))
        assert temporaries  # one per partition being written
        time.sleep(TEMPORARY_GRACE_SECONDS + 0.5)
        assert remove_stale_temporaries(str(lake_dir)) == []  # a live writer's file stays

        instance = instance_for(config)
        (live,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        # a second run of the same partitions stops at once, naming the first; the live run is not failed
        environment = _environment(config)
        second = CliRunner().invoke(main, ["run", "--start-date", DAYS[0], "--end-date", DAYS[-1]], env=environment)
        assert second.exit_code == 1, second.output
        assert "Traceback" not in second.output and second.output.count("another run") == 1, second.output
        assert f"{BUSY}{live.run_id}) is writing " in second.output.strip().splitlines()[-1]
        with pytest.raises(RuntimeError, match=rf"another run \(id {live.run_id}\) is writing"):
            materialize_range(config, _raw_keys(config), DAYS[1:], instance_for(config), log_level="ERROR")
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)

    assert sorted(Path(config.lake_root).rglob("*.tmp")) == temporaries  # left behind by kill -9
    time.sleep(TEMPORARY_GRACE_SECONDS + 0.5)
    instance = instance_for(config)  # what every run, demo and status of the CLI opens first
    killed = instance.get_run_by_id(live.run_id)
    assert killed.status == dg.DagsterRunStatus.FAILURE and killed.tags[DEAD_TAG] == str(child.pid)
    status = CliRunner().invoke(main, ["status"], env=_environment(config))
    died = f"its process (pid {child.pid}) died"
    assert any(line.startswith(f"  {live.run_id[:8]}  ") and line.endswith(died) for line in status.output.splitlines())

    materialize_range(config, _raw_keys(config), DAYS, instance, log_level="ERROR")
    assert not list(Path(config.lake_root).rglob("*.tmp"))
    _assert_once_each(config)


# --- pools for the production shape ----------------------------------------------------------------------------


def test_every_asset_that_writes_the_lake_has_its_own_pool_named_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    pools = []
    for asset in asset_graph().assets:
        if stored_names(list(asset.keys)):
            assert asset.op.pool == lake_pool(asset.op.name), asset.op.name
            assert f"`{asset.op.pool}`" in readme, f"the README does not list the pool {asset.op.pool}"
            pools.append(asset.op.pool)
    assert len(pools) == len(set(pools)) >= 9
