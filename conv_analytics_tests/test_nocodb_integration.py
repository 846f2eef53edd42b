"""Collecting from a real NocoDB: the lake holds exactly NocoDB's rows, bad rows are quarantined.

Needs `scripts/servers start nocodb` and `eval "$(scripts/servers env)"`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conv_analytics.cli import main
from conv_analytics.io.lake import ParquetLake
from conv_analytics.nocodb.checks import build_reconciliation_check, reconcile_day
from conv_analytics.nocodb.setup import load_jsonl
from conv_analytics.sources.base import SourceError
from conv_analytics.sources.public import synthesize
from conv_analytics_tests.nocodb_support import client, lake_resources, new_base, resource, server, shared_data
from conv_analytics_tests.platform_support import asset_graph, check_statuses, schema_of

pytestmark = pytest.mark.integration

START = date(2026, 3, 2)
DAYS = 4
CONVERSATIONS = 300
RANGE_TAGS = {
    "dagster/asset_partition_range_start": START.isoformat(),
    "dagster/asset_partition_range_end": (START + timedelta(days=DAYS)).isoformat(),  # spill-over day
}
GRAPH = asset_graph()
RAW = GRAPH.ingest
ingest_messages = next(a for a in GRAPH.ingest if dg.AssetKey(GRAPH.entities["messages"].raw) in a.keys)
reconciliation_checks = [
    build_reconciliation_check(entity, tables, GRAPH.partitions.daily) for entity, tables in GRAPH.entities.items()
]


@pytest.fixture(scope="module")
def loaded():
    server()
    yield from new_base("it-load")


@pytest.fixture(scope="module")
def loaded_base(loaded):
    title, tables = loaded
    path = shared_data() / "dailydialog" / "validation.jsonl"
    counts = load_jsonl(client(), tables, path, START, DAYS, limit=CONVERSATIONS)
    return title, tables, path, counts


def _day(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(timezone.utc).date().isoformat()


def _lake_ids(lake: ParquetLake, asset: str, column: str) -> dict[str, list[str]]:
    return {
        key: pq.read_table(lake.partition_path(asset, key), filesystem=lake.fs)[column].to_pylist()
        for key in lake.keys(asset)
    }


def test_range_in_lake_is_exactly_nocodb(loaded_base, tmp_path: Path) -> None:
    title, tables, path, (n_conversations, n_messages) = loaded_base
    assert n_conversations == CONVERSATIONS and n_messages > 2000
    # what NocoDB holds, per day, from the generator that loaded it
    expected_conversations: dict[str, set[str]] = defaultdict(set)
    expected_messages: dict[str, set[str]] = defaultdict(set)
    for conversation, messages in synthesize(path, START, DAYS, CONVERSATIONS):
        expected_conversations[_day(conversation["started_at"])].add(conversation["conversation_id"])
        for message in messages:
            expected_messages[_day(message["sent_at"])].add(message["message_id"])
    # ... and NocoDB agrees on the totals
    assert client().count(tables.messages) == n_messages
    assert sum(len(v) for v in expected_messages.values()) == n_messages

    nocodb = resource(title, page_size=250, threads=3)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*RAW, *reconciliation_checks],
            resources=lake_resources(tmp_path / "lake", nocodb),
            tags=RANGE_TAGS,
            raise_on_error=False,
            instance=instance,
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        # per raw table: NocoDB's counts reconciled, and every record read accounted for
        summaries = [c for c in checks if c.partition is None]
        assert sorted(c.check_name for c in summaries) == ["matches_nocodb"] * 2 + ["records_accounted"] * 2
        assert all(c.passed for c in checks)
        days = [(START + timedelta(days=i)).isoformat() for i in range(DAYS + 1)]
        # ... and each day of the range has its own result, which the UI shows per partition
        for check in reconciliation_checks:
            key = next(iter(check.check_keys))
            assert sorted(c.partition for c in checks if c.asset_check_key == key and c.partition) == days
            assert check_statuses(instance, key, GRAPH.partitions.daily) == {"SUCCEEDED": set(days)}

    lake = ParquetLake.open(str(tmp_path / "lake"))
    conversations = _lake_ids(lake, "raw_conversations", "conversation_id")
    messages = _lake_ids(lake, "raw_messages", "message_id")
    assert sorted(messages) == days
    for day in days:
        assert Counter(conversations[day]) == Counter(expected_conversations.get(day, set())), day
        assert Counter(messages[day]) == Counter(expected_messages.get(day, set())), day
    quarantined = _lake_ids(lake, "quarantined_messages", "locator")
    assert all(not ids for ids in quarantined.values())


def test_deleted_row_fails_the_check(loaded_base, tmp_path: Path) -> None:
    """A row deleted in NocoDB after its day was stored: the reconciliation names it."""
    title, tables, _, _ = loaded_base
    nocodb = resource(title)
    day = START.isoformat()
    resources = lake_resources(tmp_path / "lake", nocodb)
    assert dg.materialize([*RAW, *reconciliation_checks], resources=resources, partition_key=day).success
    lake = ParquetLake.open(str(tmp_path / "lake"))
    source = nocodb.source()
    assert reconcile_day(source, lake, "messages", GRAPH.entities["messages"], day)["ok"]
    victim = client().page(tables.messages, where=source.time_filter("messages", *_window(START)), limit=1).rows[0]
    client().delete(tables.messages, [victim["Id"]])
    try:
        # the check as Dagster runs it after a materialisation, here against the stored day
        outcome = reconcile_day(source, lake, "messages", GRAPH.entities["messages"], day)
    finally:
        client().insert(tables.messages, [{k: v for k, v in victim.items() if k not in _META}])
    assert not outcome["ok"]
    assert outcome["nocodb_rows"] == outcome["raw_rows"] - 1
    assert outcome["not_in_nocodb"] == [victim["message_id"]]
    assert outcome["missing_in_lake_count"] == 0


_META = ("Id", "CreatedAt", "UpdatedAt")


def _window(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


@pytest.fixture(scope="module")
def odd_base(loaded):
    """A user's own messages table: other column names, text as a number, time as free text."""
    title, tables = loaded
    odd = client().create_table(
        tables.base_id,
        "chat_lines",
        [
            ("msg_id", "SingleLineText"),
            ("conversation_id", "SingleLineText"),
            ("role", "SingleLineText"),
            ("body", "Number"),
            ("sent_at", "SingleLineText"),
        ],
    )["id"]
    client().insert(
        odd,
        [
            {"msg_id": "ok-1", "conversation_id": "c1", "role": "user", "sent_at": "2026-03-02T10:00:00Z"},
            {"msg_id": "no-conv", "role": "user", "sent_at": "2026-03-02 11:00:00"},
            {"msg_id": "bad-time", "conversation_id": "c1", "role": "user", "sent_at": "yesterday"},
            {
                "msg_id": "num-text",
                "conversation_id": "c1",
                "role": "user",
                "body": 42,
                "sent_at": "2026-03-02 12:00:00",
            },
        ],
    )
    return title


def test_bad_rows_are_quarantined_with_reason(odd_base, tmp_path: Path) -> None:
    nocodb = resource(
        odd_base,
        messages_table="chat_lines",
        columns_json='{"messages": {"message_id": "msg_id", "text": "body"}}',
    )
    resources = lake_resources(tmp_path / "lake", nocodb)
    today = datetime.now(timezone.utc).date().isoformat()
    for day in (START.isoformat(), today):
        assert dg.materialize([ingest_messages], resources=resources, partition_key=day).success
    lake = ParquetLake.open(str(tmp_path / "lake"))
    raw = lake.read("raw_messages", [START.isoformat()], _schema("raw_messages"))
    assert raw["message_id"].to_pylist() == ["ok-1"]
    quarantine = lake.read("quarantined_messages", [START.isoformat(), today], _schema("quarantined_messages"))
    reasons = {
        (row["partition_date"].isoformat(), row["record"].split('"msg_id": "')[1].split('"')[0]): row["reason"]
        for row in quarantine.to_pylist()
    }
    assert reasons == {
        (START.isoformat(), "no-conv"): "missing conversation_id",
        (START.isoformat(), "num-text"): "text is not a string: int",
        (today, "bad-time"): "bad sent_at: 'yesterday'",
    }
    assert all(loc.startswith("nocodb:chat_lines/") for loc in quarantine["locator"].to_pylist())


def _schema(asset: str):
    return schema_of(asset, GRAPH)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The step failure as Dagster shows it: the Failure's description, not a traceback."""
    assert not result.success
    failures = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    assert failures[0].user_failure_data is not None  # a dg.Failure, i.e. an expected error
    return failures[0].user_failure_data.description or ""


def test_wrong_token_is_one_clear_error(loaded, tmp_path: Path) -> None:
    title, _ = loaded
    nocodb = resource(title, api_token="not-a-token")
    result = dg.materialize(
        [ingest_messages],
        resources=lake_resources(tmp_path, nocodb),
        partition_key=START.isoformat(),
        raise_on_error=False,
    )
    message = _failure(result)
    assert "refused the API token" in message and "NOCODB_API_TOKEN" in message
    assert "not-a-token" not in message
    with pytest.raises(SourceError, match="NOCODB_API_TOKEN"):
        nocodb.source().table("messages")


def test_wrong_table_names_the_setting(loaded, tmp_path: Path) -> None:
    title, _ = loaded
    nocodb = resource(title, messages_table="mesages")
    result = dg.materialize(
        [ingest_messages],
        resources=lake_resources(tmp_path, nocodb),
        partition_key=START.isoformat(),
        raise_on_error=False,
    )
    assert "NOCODB_MESSAGES_TABLE='mesages' is not a table" in _failure(result)
    with pytest.raises(SourceError, match="NOCODB_BASE='no-such-base'"):
        resource("no-such-base").source().table("messages")


def test_cli_init_and_wrong_token(monkeypatch) -> None:
    url, token = server()
    monkeypatch.setenv("NOCODB_URL", url)
    monkeypatch.setenv("NOCODB_API_TOKEN", "wrong")
    # through the top-level command, which turns errors users can fix into one line
    result = CliRunner().invoke(main, ["nocodb", "init", "--base", "cli-never-made"])
    assert result.exit_code == 1
    assert "NOCODB_API_TOKEN" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("NOCODB_API_TOKEN", token)
    title = f"cli-{datetime.now().strftime('%H%M%S%f')}"
    result = CliRunner().invoke(main, ["nocodb", "init", "--base", title])
    assert result.exit_code == 0, result.output
    base_id = result.output.split("NOCODB_BASE='")[1].split("'")[0]
    try:
        source = resource(base_id).source()
        assert source.table("conversations").time_is_date and source.table("messages").time_is_date
        path = shared_data() / "multiwoz" / "val.jsonl"
        args = [
            "nocodb",
            "load",
            "--input",
            str(path),
            "--start-date",
            "2026-03-02",
            "--days",
            "2",
            "--limit",
            "20",
            "--base",
            base_id,
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "loaded 20 conversations" in result.output
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 1 and "already in NocoDB" in again.output
        assert client().count(source.table("conversations").id) == 20
    finally:
        client().request("DELETE", f"/api/v2/meta/bases/{base_id}")
