"""The NocoDB sensor against a real NocoDB: new, edited and late rows request exactly their days."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from conv_analytics.io.resources import LakeResource
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.nocodb.sensor import build_nocodb_sensor
from conv_analytics_tests.nocodb_support import client, lake_resources, new_base, resource, server
from conv_analytics_tests.platform_support import TEST_START_DATE, asset_graph

pytestmark = pytest.mark.integration

GRAPH = asset_graph()
DAILY_ASSETS = [key.to_user_string() for key in GRAPH.daily_chain]
nocodb_changes = build_nocodb_sensor(GRAPH.daily_chain, GRAPH.entities, TEST_START_DATE, enabled=True)


@pytest.fixture(scope="module")
def base():
    server()
    yield from new_base("it-sensor")


def _conversation(cid: str, started: str) -> dict[str, str]:
    return {
        "conversation_id": cid,
        "user_id": "u1",
        "channel": "web",
        "started_at": started,
        "ended_at": started,
        "status": "resolved",
    }


def _message(mid: str, cid: str, sent: str) -> dict[str, str]:
    return {"message_id": mid, "conversation_id": cid, "role": "user", "text": "hello", "sent_at": sent}


def _ranges(result: dg.SensorResult | dg.SkipReason) -> list[tuple[str, str]]:
    """(first day, last day) of each requested run."""
    if isinstance(result, dg.SkipReason):
        return []
    out = []
    for request in result.run_requests or []:
        assert sorted(k.to_user_string() for k in request.asset_selection or []) == sorted(DAILY_ASSETS)
        if request.partition_key:
            out.append((request.partition_key, request.partition_key))
        else:
            out.append(
                (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"])
            )
    return sorted(out)


def test_sensor_requests_exactly_the_changed_days(base, tmp_path: Path) -> None:
    title, tables = base
    nocodb = resource(title)
    lake = LakeResource(root=str(tmp_path / "lake"))
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None):
        resources = {"nocodb": nocodb, "lake": lake}
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            result = nocodb_changes(context)
        return result, (result.cursor if isinstance(result, dg.SensorResult) else cursor)

    noco = client()
    noco.insert(tables.conversations, [_conversation("c1", "2026-03-10 09:00:00+00:00")])
    ids = noco.insert(
        tables.messages,
        [_message("m1", "c1", "2026-03-10 09:00:00+00:00"), _message("m2", "c1", "2026-03-10 09:01:00+00:00")],
    )

    first, cursor = tick(None)  # everything is new: day 10, and day 9 for its categories
    assert _ranges(first) == [("2026-03-09", "2026-03-10")]
    again, _ = tick(None)  # the same tick evaluated again (a daemon restart): the same run keys
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
    quiet, cursor = tick(cursor)
    assert _ranges(quiet) == []

    # the day is collected, as the requested run would
    assert dg.materialize(
        GRAPH.ingest,
        resources=lake_resources(tmp_path / "lake", nocodb),
        partition_key="2026-03-10",
    ).success

    # a new conversation two days later
    noco.insert(tables.conversations, [_conversation("c2", "2026-03-12 10:00:00+00:00")])
    new, cursor = tick(cursor)
    assert _ranges(new) == [("2026-03-12", "2026-03-12")]

    # a late message for an old day
    noco.insert(tables.messages, [_message("m0", "c0", "2026-01-05 23:59:00+00:00")])
    late, cursor = tick(cursor)
    assert _ranges(late) == [("2026-01-04", "2026-01-05")]

    # an edit moving m2 to another day: its new day, and the day the lake holds it in
    noco.update(tables.messages, [{"Id": ids[1], "sent_at": "2026-03-15 08:00:00+00:00"}])
    edited, cursor = tick(cursor)
    assert _ranges(edited) == [("2026-03-09", "2026-03-10"), ("2026-03-14", "2026-03-15")]

    quiet, cursor = tick(cursor)
    assert _ranges(quiet) == []
    assert isinstance(quiet, dg.SensorResult) and "no NocoDB rows changed" in str(quiet.skip_reason)


def test_sensor_without_nocodb_skips(tmp_path: Path) -> None:
    resources = {"nocodb": NocoDBResource(), "lake": LakeResource(root=str(tmp_path))}
    with dg.build_sensor_context(resources=resources) as context:
        result = nocodb_changes(context)
    assert isinstance(result, dg.SkipReason) and "NOCODB_URL" in (result.skip_message or "")
