"""The production shape from the command line: a Celery worker, and what the Dagster instance is doing."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone

import click
import dagster as dg
import yaml

from conv_analytics.config import Config


@click.command("celery-worker", context_settings={"ignore_unknown_options": True})
@click.option("--name", default=None, help="Worker name (default: conv-analytics-<host>-<pid>).")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
    help="Celery pool: prefork (one process per concurrent step) or solo (one step at a time, in the worker).",
)
@click.option("--concurrency", type=click.IntRange(1, 256), default=None, help="Steps at once (default: CPUs).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def celery_worker(name: str | None, pool: str, concurrency: int | None, celery_args: Sequence[str]) -> None:
    """A Celery worker for runs on the celery executor, on this or any host that reaches the broker,
    the Dagster instance and the lake: `dagster-celery worker start` with the executor's own config."""
    from conv_analytics.executors import CELERY_QUEUE, celery_config
    from conv_analytics.instance import prepare_instance_dir

    config = Config.from_env()
    command = shutil.which("dagster-celery", path=os.path.dirname(sys.executable)) or shutil.which("dagster-celery")
    if command is None:
        raise click.ClickException("dagster-celery is not installed: pip install 'conv-analytics[deploy]'")
    instance = prepare_instance_dir(config)
    settings = instance / "celery-worker.yaml"
    settings.write_text(yaml.safe_dump({"execution": {"config": celery_config(config)}}), encoding="utf-8")
    worker = name or f"conv-analytics-{socket.gethostname()}-{os.getpid()}"
    args = [command, "worker", "start", "-A", "dagster_celery.app", "-y", str(settings), "-q", CELERY_QUEUE]
    args += ["-n", worker, "--", f"--pool={pool}", *([f"--concurrency={concurrency}"] if concurrency else [])]
    # dagster-celery starts `celery` from PATH: this environment's, even when it is not activated
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    environment = {**os.environ, Config.dagster_home.env: str(instance), "PATH": path}
    os.execve(command, [*args, *celery_args], environment)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def operations(instance: dg.DagsterInstance, asset_keys: Sequence[dg.AssetKey], limit: int = 5) -> list[str]:
    """What the instance is doing: the last run of each asset; runs in progress, failed (saying when
    their process died) and queued; and the backfills in progress with their completed and total partitions."""
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    from conv_analytics.instance import DEAD_TAG, run_partitions

    lines = [f"dagster instance: {type(instance.run_storage).__name__.removesuffix('RunStorage').lower()}"]
    records = {record.asset_entry.asset_key: record for record in instance.get_asset_records(list(asset_keys))}
    run_ids = {r.asset_entry.last_run_id for r in records.values() if r.asset_entry.last_run_id}
    found = instance.get_run_records(dg.RunsFilter(run_ids=list(run_ids))) if run_ids else []
    runs = {record.dagster_run.run_id: record for record in found}
    lines.append(f"{'asset':<28} {'last run':<10} {'status':<10} {'ended (UTC)':<19}")
    for key in asset_keys:
        record = records.get(key)
        run = runs.get(record.asset_entry.last_run_id or "") if record else None
        if run is None:
            lines.append(f"{key.to_user_string():<28} {'-':<10}")
            continue
        status = run.dagster_run.status.value.lower()
        lines.append(f"{key.to_user_string():<28} {run.dagster_run.run_id[:8]:<10} {status:<10} {_when(run.end_time)}")
    for title, status in (
        ("runs in progress", dg.DagsterRunStatus.STARTED),
        ("failed runs", dg.DagsterRunStatus.FAILURE),
        ("queued runs", dg.DagsterRunStatus.QUEUED),
    ):
        found = dg.RunsFilter(statuses=[status])
        lines.append(f"{title}: {instance.get_runs_count(found)}")
        for record in instance.get_run_records(found, limit=limit):
            run = record.dagster_run
            died = f"  its process (pid {run.tags[DEAD_TAG]}) died" if DEAD_TAG in run.tags else ""
            line = f"  {run.run_id[:8]}  {run_partitions(run)}  {_when(record.create_timestamp.timestamp())}{died}"
            lines.append(line)
    backfills = instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]))
    lines.append(f"backfills in progress: {len(backfills)}")
    for backfill in backfills:
        done, total = backfill_progress(backfill)
        lines.append(f"  {backfill.backfill_id}  {done}/{total} partitions complete")
    return lines


def backfill_progress(backfill: object) -> tuple[int, int]:
    """(partitions materialised for every targeted asset, partitions targeted) of an asset backfill."""
    data = backfill.asset_backfill_data  # type: ignore[attr-defined]
    if data is None:
        return 0, 0
    targeted: dict[str | None, set[object]] = defaultdict(set)
    for item in data.target_subset.iterate_asset_partitions():
        targeted[item.partition_key].add(item)
    done = set(data.materialized_subset.iterate_asset_partitions())
    return sum(1 for items in targeted.values() if items <= done), len(targeted)
