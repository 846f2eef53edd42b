"""`conv-analytics status`'s view of the Dagster instance: last run per asset, failed and queued runs,
backfills in progress with their completed and total partitions (on a temporary instance)."""

import time

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from conv_analytics.cli.deploy import backfill_progress, operations

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01")
KEYS = ["2026-11-02", "2026-11-03", "2026-11-04"]


@dg.asset(partitions_def=DAYS)
def first(context: dg.AssetExecutionContext) -> None:
    """Fails on its second day."""
    if context.partition_key == KEYS[1]:
        raise ValueError("bad day")


@dg.asset(partitions_def=DAYS, deps=[first])
def second() -> None: ...


def test_operations_show_last_runs_failures_queue_and_backfill_progress() -> None:
    with dg.instance_for_test() as instance:
        dg.materialize([first, second], partition_key=KEYS[0], instance=instance)
        failed = dg.materialize([first], partition_key=KEYS[1], instance=instance, raise_on_error=False)
        assert not failed.success
        location = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=4000, location_name="somewhere")
        origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), "waiting_job")
        queued = dg.DagsterRun(
            job_name="waiting_job", run_id="q" * 36, status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin
        )
        instance.add_run(queued)
        graph = dg.Definitions(assets=[first, second]).resolve_asset_graph()
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id="bf1",
            asset_graph=graph,
            partition_names=KEYS,
            asset_selection=[first.key, second.key],
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
        assert backfill_progress(backfill) == (0, 3)
        # the daemon records what it materialised: both assets of the first day, one asset of the second
        done = {AssetKeyPartitionKey(first.key, KEYS[0]), AssetKeyPartitionKey(second.key, KEYS[0])}
        done.add(AssetKeyPartitionKey(first.key, KEYS[1]))
        data = backfill.asset_backfill_data
        progressed = backfill.with_asset_backfill_data(
            data._replace(materialized_subset=AssetGraphSubset.from_asset_partition_set(done, graph)),
            dynamic_partitions_store=instance,
            asset_graph=graph,
        )
        assert backfill_progress(progressed) == (1, 3)
        instance.add_backfill(progressed)

        lines = operations(instance, [first.key, second.key])
    assert lines[0] == "dagster instance: sqlite"
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows["first"][2] == "failure" and rows["second"][2] == "success"
    assert rows["first"][1] == failed.run_id[:8]
    assert "failed runs: 1" in lines and "queued runs: 1" in lines
    assert any(line.startswith(f"  {failed.run_id[:8]}  ") for line in lines)
    assert any(line.startswith("  qqqqqqqq  waiting_job  ") for line in lines)
    assert "backfills in progress: 1" in lines and "  bf1  1/3 partitions complete" in lines
