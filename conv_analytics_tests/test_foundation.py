"""The platform end to end on the embedded default: graph, partitions, idempotence, completeness, quarantine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conv_analytics.assets import categorize as categorize_assets
from conv_analytics.assets import enrich as enrich_assets
from conv_analytics.assets.metadata import label_counts
from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.definitions import Platform, defs
from conv_analytics.instance import prepare_instance_dir
from conv_analytics.io.lake import ParquetLake
from conv_analytics.runner import materialize_range, plan
from conv_analytics.sources.base import normalize
from conv_analytics.sources.demo import generate_day, write_demo
from conv_analytics.sources.files import FilesSource
from conv_analytics_tests.conftest import DEMO_FIRST_DAY, REPO, THREE_DAYS, demo_config
from conv_analytics_tests.platform_support import asset_graph, schema_of, stored_names

DAILY_TABLES = stored_names(asset_graph().daily_chain)


def lake_of(config: Config) -> ParquetLake:
    return ParquetLake.open(config.lake_root)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


# --- the demo data -------------------------------------------------------------------------------------------


def test_demo_days_are_deterministic_and_independent() -> None:
    day = date(2026, 3, 14)
    assert generate_day(day) == generate_day(day)
    assert generate_day(day)[0] != generate_day(day + timedelta(days=1))[0]


def test_demo_covers_what_the_metrics_need() -> None:
    conversations, messages = [], []
    for offset in range(14):
        c, m, _ = generate_day(date(2026, 5, 4) + timedelta(days=offset))
        conversations += c
        messages += m
    assert {c["status"] for c in conversations} == {"open", "resolved", "escalated", "abandoned"}
    assert {c["channel"] for c in conversations} >= {"web", "whatsapp", "app", "email", "sms"}
    assert {m["role"] for m in messages} == {"user", "assistant", "agent", "system"}
    crossing = [c for c in conversations if c["ended_at"] and c["ended_at"][:10] != c["started_at"][:10]]
    assert crossing, "some conversations must run past midnight"
    users = [c["user_id"] for c in conversations]
    assert len(set(users)) < len(users), "some users must come back"
    assert any("@example.com" in m["text"] for m in messages), "some messages carry personal data to redact"
    assert any("didn't understand" in m["text"] for m in messages), "some assistant replies are fallbacks"


# --- the whole graph, one partition at a time ----------------------------------------------------------------


def test_every_daily_asset_has_a_file_per_day(three_day_lake: Config) -> None:
    lake = lake_of(three_day_lake)
    for asset in DAILY_TABLES:
        assert [date.fromisoformat(k) for k in lake.keys(asset)] == THREE_DAYS, asset


def test_lake_holds_exactly_the_valid_source_records(three_day_lake: Config) -> None:
    lake = lake_of(three_day_lake)
    for day in THREE_DAYS:
        conversations, messages, _ = generate_day(day, per_day=12)
        key = day.isoformat()
        raw = lake.read("raw_conversations", [key], schema_of("raw_conversations"))
        assert sorted(raw.column("conversation_id").to_pylist()) == sorted(c["conversation_id"] for c in conversations)
        categories = lake.read("conversation_categories", [key], schema_of("conversation_categories"))
        assert categories.num_rows == len(conversations)
        # a conversation's figures include its messages after midnight (read from the next day)
        by_id = {c["conversation_id"]: c for c in categories.to_pylist()}
        expected_messages = {}
        for m in messages:
            expected_messages[m["conversation_id"]] = expected_messages.get(m["conversation_id"], 0) + 1
        late = [c for c in conversations if c["ended_at"] and c["ended_at"][:10] != key]
        for conversation in late:
            if (day + timedelta(days=1)) in THREE_DAYS:
                cid = conversation["conversation_id"]
                assert by_id[cid]["messages"] == expected_messages[cid]


def test_malformed_demo_records_are_quarantined_with_reasons(three_day_lake: Config) -> None:
    lake = lake_of(three_day_lake)
    quarantine = lake.read("quarantined_messages", [THREE_DAYS[0].isoformat()], schema_of("quarantined_messages"))
    reasons = sorted(quarantine.column("reason").to_pylist())
    assert reasons == ["missing message_id", "unknown role: 'robot'"]
    # ids stay readable in the quarantine: only message text is redacted
    assert all("c-2026" in r for r in quarantine.column("record").to_pylist())


def test_enriched_and_categorised_columns_are_filled(three_day_lake: Config) -> None:
    con = duckdb.connect()
    root = three_day_lake.lake_root
    con.execute(f"CREATE VIEW enriched AS SELECT * FROM read_parquet('{root}/enriched_messages/*/*.parquet')")
    counts = con.execute(
        "SELECT count(*) FILTER (WHERE role = 'user' AND intent IS NULL), "
        "count(*) FILTER (WHERE role <> 'user' AND intent IS NOT NULL), "
        "count(*) FILTER (WHERE is_fallback), count(DISTINCT language), "
        "count(*) FILTER (WHERE text LIKE '%@example.com%') FROM enriched"
    ).fetchone()
    assert counts[0] == 0 and counts[1] == 0
    assert counts[2] > 0, "fallback replies are recognised"
    assert counts[3] >= 3, "the demo's languages are detected"
    assert counts[4] == 0, "e-mail addresses are redacted before storage"
    con.execute(f"CREATE VIEW categories AS SELECT * FROM read_parquet('{root}/conversation_categories/*/*.parquet')")
    row = con.execute(
        "SELECT count(DISTINCT topic), count(DISTINCT primary_intent), min(sentiment_mean), max(sentiment_mean), "
        "count(*) FILTER (WHERE first_response_seconds IS NULL AND turns > 0) FROM categories"
    ).fetchone()
    assert row[0] >= 3 and row[1] >= 3
    assert -1.0 <= row[2] < 0 < row[3] <= 1.0
    assert row[4] == 0


def test_rerunning_a_partition_leaves_the_same_bytes(three_day_lake: Config) -> None:
    lake = lake_of(three_day_lake)
    key = THREE_DAYS[1].isoformat()

    def snapshot() -> dict[str, bytes]:
        return {a: Path(lake.partition_path(a, key)).read_bytes() for a in DAILY_TABLES}

    before = snapshot()
    platform = Platform.build(three_day_lake)
    result = dg.materialize(
        platform.graph.assets, selection=platform.graph.daily_chain, partition_key=key, resources=platform.resources
    )
    assert result.success
    after = snapshot()
    assert [a for a in before if before[a] != after[a]] == []
    raw = pq.read_table(lake.partition_path("raw_messages", key))
    assert raw.num_rows == len(set(raw.column("message_id").to_pylist()))


# --- ranges, weeks and months --------------------------------------------------------------------------------


def test_single_run_backfill_writes_every_day_of_the_range(ten_day_lake: Config) -> None:
    lake = lake_of(ten_day_lake)
    assert len(lake.keys("raw_messages")) == 10
    assert len(lake.keys("daily_rollups")) == 10


def test_weekly_rollup_runs_for_a_complete_week(ten_day_lake: Config) -> None:
    weekly_key = Platform.build(ten_day_lake).graph.rollups["week"].key
    materialize_range(ten_day_lake, [weekly_key], [DEMO_FIRST_DAY.isoformat()])
    weekly = lake_of(ten_day_lake).read("weekly_rollups", [DEMO_FIRST_DAY.isoformat()], schema_of("weekly_rollups"))
    overall = [r for r in weekly.to_pylist() if r["dimension"] == "all"]
    assert len(overall) == 1 and overall[0]["period"] == "week"
    categories = lake_of(ten_day_lake).read(
        "conversation_categories",
        [(DEMO_FIRST_DAY + timedelta(days=i)).isoformat() for i in range(7)],
        schema_of("conversation_categories"),
    )
    assert overall[0]["conversations"] == categories.num_rows


def test_weekly_rollup_refuses_while_a_day_is_missing(ten_day_lake: Config) -> None:
    next_week = (DEMO_FIRST_DAY + timedelta(days=7)).isoformat()  # only 3 of its days are materialised
    with pytest.raises(RuntimeError) as failure:
        materialize_range(ten_day_lake, [Platform.build(ten_day_lake).graph.rollups["week"].key], [next_week])
    message = str(failure.value)
    assert "has no data for partition(s)" in message
    assert (DEMO_FIRST_DAY + timedelta(days=10)).isoformat() in message


def test_the_primary_intent_is_the_most_said_substantive_one_the_earliest_on_a_tie() -> None:
    intents = pa.array(
        [
            ["greeting", "refund", "track", "track", "refund", "thanks"],  # a tie: refund came first
            ["greeting", "thanks", "thanks"],  # social only: the most said of those
            ["thanks", None, "", "cancel"],  # one substantive intent beats more social ones
            ["other", "greeting"],  # "other" counts as social: the earlier on a tie
            [None, ""],  # nothing said
            [],
            None,
        ],
        pa.list_(pa.string()),
    )
    expected = ["refund", "thanks", "cancel", "other", "other", "other", "other"]
    assert categorize_assets.primary_intents(intents).to_pylist() == expected
    # a slice of a column and a column in chunks count the same rows
    assert categorize_assets.primary_intents(intents.slice(1, 3)).to_pylist() == expected[1:4]
    chunked = pa.chunked_array([intents.slice(0, 2), intents.slice(2)])
    assert categorize_assets.primary_intents(chunked).to_pylist() == expected


def test_messages_enriched_in_slices_are_written_as_enriched_at_once(
    ten_day_lake: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = DEMO_FIRST_DAY.isoformat()
    path = Path(lake_of(ten_day_lake).partition_path("enriched_messages", key))
    before = path.read_bytes()
    monkeypatch.setattr(enrich_assets, "SLICE_MESSAGES", 5)
    materialize_range(ten_day_lake, [Platform.build(ten_day_lake).graph.enriched.key], [key])
    assert pq.read_metadata(path).num_rows > 10 * 5
    assert path.read_bytes() == before


def test_the_categories_step_reads_only_the_message_columns_it_uses(
    ten_day_lake: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, list[str] | None]] = []
    read = ParquetLake.read

    def spy(self: ParquetLake, asset: str, keys: list[str] | None, schema, columns: list[str] | None = None):
        reads.append((asset, columns))
        return read(self, asset, keys, schema, columns=columns)

    monkeypatch.setattr(ParquetLake, "read", spy)
    materialize_range(ten_day_lake, [Platform.build(ten_day_lake).graph.categories.key], [DEMO_FIRST_DAY.isoformat()])
    assert [columns for asset, columns in reads if asset == "enriched_messages"] == [
        list(categorize_assets.MESSAGE_COLUMNS)
    ]


# --- lineage and partition mappings --------------------------------------------------------------------------


def test_lineage_is_source_to_report() -> None:
    graph = defs().resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("intent_model") == {"raw_messages"}
    assert parents("enriched_messages") == {"raw_messages", "intent_model"}
    assert parents("topic_model") == {"enriched_messages"}
    assert parents("conversation_categories") == {"raw_conversations", "enriched_messages", "topic_model"}
    assert parents("daily_rollups") >= {"conversation_categories"}
    assert parents("weekly_rollups") >= {"daily_rollups", "conversation_categories"}
    assert parents("monthly_rollups") >= {"daily_rollups", "conversation_categories"}
    assert parents("analytics_report") >= {"daily_rollups", "weekly_rollups", "monthly_rollups"}


def _upstream_keys(child: str, parent: str, key: str) -> list[str]:
    graph = defs().resolve_asset_graph()
    child_key, parent_key = dg.AssetKey(child), dg.AssetKey(parent)
    mapping = graph.get_partition_mapping(child_key, parent_key)
    child_def = graph.get(child_key).partitions_def
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        child_def.subset_with_partition_keys([key]),
        child_def,
        graph.get(parent_key).partitions_def,
    )
    return sorted(result.partitions_subset.get_partition_keys())


def test_partition_mappings() -> None:
    assert _upstream_keys("conversation_categories", "enriched_messages", "2026-11-02") == ["2026-11-02", "2026-11-03"]
    assert _upstream_keys("conversation_categories", "raw_conversations", "2026-11-02") == ["2026-11-02"]
    week = _upstream_keys("weekly_rollups", "daily_rollups", "2026-11-02")
    assert week == [(date(2026, 11, 2) + timedelta(days=i)).isoformat() for i in range(7)]
    month = _upstream_keys("monthly_rollups", "conversation_categories", "2026-02-01")
    assert month[0] == "2026-02-01" and month[-1] == "2026-02-28" and len(month) == 28


def test_a_run_up_to_today_plans_only_weeks_and_months_that_have_ended(tmp_path: Path) -> None:
    """`conv-analytics demo` runs up to today: the current month is no partition yet, whatever the range."""
    platform = Platform.build(Config(home=tmp_path))
    today = datetime.now(timezone.utc).date()
    stages = plan(platform, today - timedelta(days=70), today)
    periods = {stage.name: stage.keys for stage in stages}
    for period, name in (("week", "weekly rollups"), ("month", "monthly rollups")):
        existing = set(platform.graph.partitions.of(period).get_partition_keys())
        assert periods[name] and set(periods[name]) <= existing
        ends = [date.fromisoformat(key) for key in periods[name]]
        assert max(ends) < today
    assert today.replace(day=1).isoformat() not in periods["monthly rollups"]


def test_the_next_days_messages_request_the_day_before_again(tmp_path: Path) -> None:
    """Conversations run past midnight: when today's messages land, yesterday's categories are stale."""
    config = Config(home=tmp_path)
    today = datetime.now(timezone.utc).date()
    yesterday = today - timedelta(days=1)
    write_demo(config.source_folder, yesterday, 2, per_day=5)
    platform = Platform.build(config)
    graph = platform.graph
    automation_defs = dg.Definitions(assets=graph.assets, resources=platform.resources)
    instance = dg.DagsterInstance.ephemeral()
    # yesterday as `conv-analytics run` builds it: the daily chain with the intent and topic models of its week
    stages = [stage for stage in plan(platform, yesterday, yesterday) if stage.keys]
    assert [key for stage in stages for key in stage.selection if key not in graph.daily_chain] == [
        graph.intent_model.key,
        graph.topic_model.key,
    ]
    for stage in stages:
        (key,) = stage.keys
        result = dg.materialize(
            graph.assets, selection=stage.selection, partition_key=key, resources=platform.resources, instance=instance
        )
        assert result.success
    first = dg.evaluate_automation_conditions(defs=automation_defs, instance=instance)
    assert first.get_requested_partitions(dg.AssetKey("conversation_categories")) <= {today.isoformat()}
    messages = graph.entities["messages"]
    result = dg.materialize(
        graph.assets,
        selection=[dg.AssetKey(messages.raw), dg.AssetKey(messages.quarantined), graph.enriched.key],
        partition_key=today.isoformat(),
        resources=platform.resources,
        instance=instance,
    )
    assert result.success
    second = dg.evaluate_automation_conditions(defs=automation_defs, instance=instance, cursor=first.cursor)
    for asset in ("conversation_categories", "daily_rollups"):
        assert yesterday.isoformat() in second.get_requested_partitions(dg.AssetKey(asset)), asset


def test_partitions_are_utc_days_iso_weeks_and_months() -> None:
    partitions = Platform.build(Config()).graph.partitions
    assert partitions.daily.timezone == "UTC"
    assert date.fromisoformat(partitions.weekly.get_first_partition_key()).weekday() == 0  # Monday
    assert partitions.monthly.get_first_partition_key().endswith("-01")


# --- the files source's quarantine ---------------------------------------------------------------------------


def test_files_source_sets_malformed_records_aside(tmp_path: Path) -> None:
    day = date(2026, 11, 2)
    stamp = "2026-11-02T10:00:00Z"
    good = {"message_id": "m1", "conversation_id": "c1", "role": "user", "text": "hi", "sent_at": stamp}
    lines = [
        json.dumps(good).encode(),
        json.dumps({**good, "message_id": "m2", "role": "bot"}).encode(),  # an alias of assistant: kept
        json.dumps({**good, "message_id": None}).encode(),
        json.dumps({**good, "message_id": "m3", "sent_at": "not a time"}).encode(),
        json.dumps({**good, "message_id": "m4", "role": "wizard"}).encode(),
        json.dumps({**good, "message_id": "m5", "text": {"rich": True}}).encode(),
        b'{"message_id": "m6", "conversation_id": "c1", "role": "user", "text": "caf\xe9", "sent_at": "'
        + stamp.encode()
        + b'"}',
        b"{not json",
        json.dumps({**good, "message_id": "m7", "sent_at": "2026-11-03T10:00:00Z"}).encode(),  # the next day's
        json.dumps(good).encode(),  # a repeated record: kept once
    ]
    (tmp_path / f"messages-{day}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    start, end = day_bounds(day)
    batch = normalize("messages", FilesSource(tmp_path).fetch("messages", start, end), start, end)
    assert batch.table.column("message_id").to_pylist() == ["m1", "m2"]
    assert batch.table.column("role").to_pylist() == ["user", "assistant"]
    quarantined = {r["locator"]: r for r in batch.quarantine.to_pylist()}
    reasons = {locator: r["reason"] for locator, r in quarantined.items()}
    name = f"messages-{day}.jsonl"
    assert reasons == {
        f"{name}:3": "missing message_id",
        f"{name}:4": "bad sent_at: 'not a time'",
        f"{name}:5": "unknown role: 'wizard'",
        f"{name}:6": "text is not a string: dict",
        f"{name}:7": "invalid UTF-8 bytes",
        f"{name}:8": "invalid JSON: Expecting property name enclosed in double quotes",
    }
    assert batch.duplicates == 1
    assert "caf\ufffd" in quarantined[f"{name}:7"]["record"]


def test_files_source_reads_csv_exports_with_mapped_columns(tmp_path: Path) -> None:
    (tmp_path / "conversations.csv").write_text(
        "ID,Customer,Channel,Started,Ended,State\n"
        "c1,u1,Web,2026-11-02 09:00:00,2026-11-02 09:10:00,resolved\n"
        "c2,u2,web,2026-11-02 23:59:59,,open\n"
        ",u3,web,2026-11-02 10:00:00,,open\n"
        "c4,u4,web,2026-11-02 10:00:00,,lost\n",
        encoding="utf-8",
    )
    columns = {
        "conversation_id": "ID",
        "user_id": "Customer",
        "channel": "Channel",
        "started_at": "Started",
        "ended_at": "Ended",
        "status": "State",
    }
    start, end = day_bounds(date(2026, 11, 2))
    source = FilesSource(tmp_path, {"conversations": columns})
    batch = normalize("conversations", source.fetch("conversations", start, end), start, end, columns)
    assert batch.table.column("conversation_id").to_pylist() == ["c1", "c2"]
    assert batch.table.column("channel").to_pylist() == ["web", "web"]
    assert sorted(batch.quarantine.column("reason").to_pylist()) == [
        "missing conversation_id",
        "unknown status: 'lost'",
    ]


# --- the CLI over the lake -----------------------------------------------------------------------------------


def test_cli_query_and_status(three_day_lake: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONV_ANALYTICS_HOME", str(three_day_lake.home))
    runner = CliRunner()
    result = runner.invoke(main, ["query", "SELECT count(*) AS n FROM raw_conversations", "--format", "json"])
    assert result.exit_code == 0, result.output
    expected = sum(len(generate_day(d, per_day=12)[0]) for d in THREE_DAYS)
    assert json.loads(result.output.strip()) == {"n": expected}
    status = runner.invoke(main, ["status"])
    assert status.exit_code == 0, status.output
    assert f"raw_messages                          3  {THREE_DAYS[0]}" in status.output
    bad = runner.invoke(main, ["query", "SELECT * FROM no_such_table"])
    assert bad.exit_code != 0 and "query failed" in bad.output and "Traceback" not in bad.output


# --- Dagster's own command line ------------------------------------------------------------------------------


def _dagster(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONV_ANALYTICS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    prepare_instance_dir(Config(home=home))  # what `conv-analytics init` does: Dagster's CLI creates none safely
    return subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dagster_asset_materialize_from_the_command_line(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    day = DEMO_FIRST_DAY.isoformat()
    result = _dagster(
        [
            "asset",
            "materialize",
            "-m",
            "conv_analytics.definitions",
            "--select",
            "raw_conversations,raw_messages,quarantined_conversations,quarantined_messages",
            "--partition",
            day,
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    raw = ParquetLake.open(config.lake_root).read("raw_conversations", [day], schema_of("raw_conversations"))
    assert raw.num_rows == len(generate_day(DEMO_FIRST_DAY, per_day=12)[0])


def test_workspace_loads_the_definitions(tmp_path: Path) -> None:
    result = _dagster(["definitions", "validate", "-w", "workspace.yaml"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_label_counts_are_largest_first_the_first_seen_first_on_a_tie() -> None:
    column = pa.chunked_array([["b", None, "a"], ["a", "c", None, "b"], ["d"]], pa.string())
    counts = label_counts(column)
    assert list(counts.items()) == [("b", 2), (None, 2), ("a", 2), ("c", 1), ("d", 1)]
    assert list(label_counts(column.combine_chunks().dictionary_encode()).items()) == list(counts.items())
    assert label_counts(pa.array([], pa.string())) == {}
