"""One id, one row: an id that reappears on another day keeps its newest version only, wherever and in
whatever order the days are run; older partitions it leaves are rewritten; lake and MongoDB agree.

The unit tests fake nothing but the inputs; the rest runs the Dagster assets in process on a local
lake, then (integration) with the S3 lake, MongoDB and NocoDB of `scripts/servers start`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from conv_analytics.assets.ingest import ACCOUNTED
from conv_analytics.assets.stores import MATCHES_MONGODB
from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.io.ids import INDEX_SCHEMA, IdIndex, index_name, index_table, resolve, versions_of
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.mongo import MongoStore, PartitionCounts, compare_partitions
from conv_analytics.nocodb.checks import build_reconciliation_check
from conv_analytics.nocodb.source import NocoDBSource
from conv_analytics.runner import materialize_days
from conv_analytics.schemas import RAW_CONVERSATIONS, TS
from conv_analytics.sources import files as files_module
from conv_analytics.sources.base import ID_FIELD as ID
from conv_analytics.sources.base import NEVER, RawRecord, Version, normalize, versions_table
from conv_analytics_tests.nocodb_support import client, lake_resources, new_base, resource, server
from conv_analytics_tests.platform_support import asset_graph, stored_table
from conv_analytics_tests.storage_support import free_port, stores_config, stores_lake

D1, D2, D3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)
DAYS = [D1, D2, D3]
MIRRORED = ("enriched_messages", "conversation_categories", "daily_rollups")
T = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _fresh_day_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "_DAYS_BY_FILE", {})


# --- the decision, without stores ----------------------------------------------------------------------


def message(message_id: str, at: datetime, **extra: object) -> dict[str, object]:
    return {"message_id": message_id, "conversation_id": "c1", "role": "user", "text": "hi", "sent_at": at, **extra}


def test_the_newest_version_wins_within_a_day_whatever_the_read_order() -> None:
    start = T
    old = RawRecord("a.jsonl:1", message("m1", T + timedelta(hours=1)), version=Version(T, "1"))
    new = RawRecord("b.jsonl:1", message("m1", T + timedelta(hours=2)), version=Version(T + timedelta(hours=3), "0"))
    for records in ([old, new], [new, old]):
        batch = normalize("messages", records, start, start + timedelta(days=1))
        assert batch.table.column("sent_at").to_pylist() == [T + timedelta(hours=2)]
        assert batch.duplicates == 1 and versions_of(batch.versions) == [new.version]
        assert sum(c.duplicates for c in batch.counts.values()) == 1
        assert all(c.balanced for c in batch.counts.values())
    # equal versions: the later read wins, as before versions existed
    tie = [RawRecord("a.jsonl:1", message("m1", T + timedelta(hours=h))) for h in (1, 2)]
    assert normalize("messages", tie, start, start + timedelta(days=1)).table.column("sent_at").to_pylist() == [
        T + timedelta(hours=2)
    ]


def index_of(rows: list[tuple[str, Version]]) -> pa.Table:
    versions = versions_table(pa.array([r[1].changed for r in rows], TS), pa.array([r[1].place for r in rows]))
    return index_table(pa.array([r[0] for r in rows]), pa.array([T] * len(rows), pa.timestamp("us")), versions)


def test_resolve_keeps_the_newest_version_across_days_read_and_stored() -> None:
    v1, v2, v3 = (Version(T + timedelta(days=i), f"{i}") for i in (1, 2, 3))
    read = {
        "2026-11-02": index_of([("a", v1), ("b", v3), ("c", v1)]),
        "2026-11-04": index_of([("a", v2), ("b", v2), ("d", v1)]),
    }
    stored = index_of([("c", v2), ("d", v1)])  # c is newer where it is stored; d ties with the read
    result = resolve(read, stored, ["2026-10-30", "2026-10-31"])
    assert result.keep == {"2026-11-02": [1], "2026-11-04": [0, 2]}  # b@02, a@04, d@04
    assert result.moved_out == {"2026-10-31": ["d"]}  # the read wins a tie: it is the later read
    assert result.superseded_by == {"a": "2026-11-04", "b": "2026-11-02", "c": "2026-10-30"}
    nothing = resolve({"2026-11-02": index_of([("x", v1)])}, INDEX_SCHEMA.empty_table(), [])
    assert nothing.keep == {"2026-11-02": [0]} and not nothing.moved_out and not nothing.dropped


def test_versions_of_exports_and_nocodb_rows() -> None:
    assert NocoDBSource.version({"Id": 7, "CreatedAt": "2026-11-02 10:00:00", "UpdatedAt": None}) == Version(
        datetime(2026, 11, 2, 10, tzinfo=timezone.utc), "000000000007"
    )
    edited = NocoDBSource.version({"Id": 7, "CreatedAt": "2026-11-02 10:00:00", "UpdatedAt": "2026-11-05 09:00:00"})
    assert edited > NocoDBSource.version({"Id": 9, "CreatedAt": "2026-11-03 10:00:00"})
    assert Version() == Version(NEVER, "") < Version(NEVER, "2026-11-02|conversations.jsonl|000000001")


# --- the files source, in process ------------------------------------------------------------------------


def conversation(cid: str, day: date, hour: int, user: str = "u1") -> dict[str, object]:
    started = datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)
    return {
        "conversation_id": cid,
        "user_id": user,
        "channel": "web",
        "started_at": started.isoformat(),
        "status": "resolved",
    }


def chat(mid: str, cid: str, day: date, hour: int, role: str = "user", text: str = "where is my parcel") -> dict:
    sent = datetime(day.year, day.month, day.day, hour, 5, tzinfo=timezone.utc)
    return {"message_id": mid, "conversation_id": cid, "role": role, "text": text, "sent_at": sent.isoformat()}


def write_exports(folder: Path, moved: bool = True) -> dict[str, list[dict]]:
    """Three days of exports; with `moved`, conversation `c-move` and message `m-move` reappear in the
    export of the third day with the third day's time (a newer version: a later export)."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[dict]] = {"conversations": [], "messages": []}
    for n, day in enumerate(DAYS):
        conversations = [conversation(f"c{n}-{i}", day, 9 + i) for i in range(3)]
        messages = [chat(f"m{n}-{i}", f"c{n}-{i}", day, 9 + i) for i in range(3)]
        if day == D1 or (moved and day == D3):
            conversations.append(conversation("c-move", day, 15, user="u-move"))
            messages.append(chat("m-move", "c-move", day, 15))
        for entity, records in (("conversations", conversations), ("messages", messages)):
            path = folder / f"{entity}-{day}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            written[entity] += records
    return written


def files_config(home: Path) -> Config:
    config = Config(home=home, start_date=date(2024, 1, 1))
    write_exports(config.source_folder)
    return config


def ingest(config: Config, first: date, last: date) -> dg.ExecuteInProcessResult:
    platform = Platform.build(config)
    keys = [key for asset in platform.graph.ingest for key in asset.keys]
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    result = dg.materialize(platform.graph.assets, selection=keys, resources=platform.resources, tags=tags)
    assert result.success
    return result


def raw_ids(lake: ParquetLake, entity: str) -> dict[str, list[str]]:
    """Every id in the raw table of an entity, by day."""
    column = "conversation_id" if entity == "conversations" else "message_id"
    schema = stored_table(f"raw_{entity}").schema
    return {k: lake.read(f"raw_{entity}", [k], schema).column(column).to_pylist() for k in lake.keys(f"raw_{entity}")}


def assert_one_row_per_id(lake: ParquetLake, written: dict[str, list[dict]]) -> None:
    """0 lost, 0 duplicated, counted from the input: each id read is stored once, on its newest day."""
    for entity in ("conversations", "messages"):
        column = "conversation_id" if entity == "conversations" else "message_id"
        stored = [i for ids in raw_ids(lake, entity).values() for i in ids]
        assert len(stored) == len(set(stored)), f"duplicated {entity}"
        assert set(stored) == {r[column] for r in written[entity]}, f"lost {entity}"


def snapshot(lake: ParquetLake) -> dict[str, bytes]:
    files = {}
    for asset in ("raw_conversations", "raw_messages", index_name("raw_conversations"), index_name("raw_messages")):
        for key in lake.keys(asset):
            files[f"{asset}/{key}"] = Path(lake.partition_path(asset, key)).read_bytes()
    return files


def test_a_backfill_keeps_the_newest_version_and_reruns_change_nothing(tmp_path: Path) -> None:
    config = files_config(tmp_path)
    written = write_exports(config.source_folder)
    result = ingest(config, D1, D3)
    lake = ParquetLake.open(config.lake_root)
    assert_one_row_per_id(lake, written)
    assert "c-move" in raw_ids(lake, "conversations")[D3.isoformat()]
    assert "m-move" not in raw_ids(lake, "messages")[D1.isoformat()]
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == ACCOUNTED and check.passed
    by_origin = result.asset_materializations_for_node("ingest_messages")[0].metadata["records_by_origin"].value
    assert by_origin[f"messages-{D1}.jsonl"] == {
        "read": 4,
        "raw": 3,
        "quarantined": 0,
        "duplicates": 1,
        "other_days": 0,
    }
    before = snapshot(lake)
    for first, last in ((D1, D1), (D3, D3), (D1, D2), (D1, D3)):  # one day, a range, the whole backfill again
        ingest(config, first, last)
        assert snapshot(lake) == before, (first, last)


def test_days_run_in_any_order_end_as_the_backfill(tmp_path: Path) -> None:
    backfill = files_config(tmp_path / "backfill")
    ingest(backfill, D1, D3)
    expected = snapshot(ParquetLake.open(backfill.lake_root))
    for order in ([D1, D2, D3], [D3, D2, D1], [D2, D3, D1]):
        config = files_config(tmp_path / "-".join(d.isoformat() for d in order))
        for day in order:
            ingest(config, day, day)
        assert snapshot(ParquetLake.open(config.lake_root)) == expected, order
    # run D1 then D3: D3's run rewrites D1 without the moved ids and reports that partition
    config = files_config(tmp_path / "forward")
    ingest(config, D1, D1)
    moved = ingest(config, D3, D3)
    reported = {
        (event.asset_key.path[-1], event.partition)
        for event in moved.get_asset_materialization_events()
        if event.partition == D1.isoformat()
    }
    assert reported == {("raw_conversations", D1.isoformat()), ("raw_messages", D1.isoformat())}


def test_a_lake_without_an_index_is_read_from_its_raw_partitions(tmp_path: Path) -> None:
    """Days written before the index existed: their ids are found in the raw partitions."""
    config = files_config(tmp_path)
    written = write_exports(config.source_folder)
    ingest(config, D1, D1)
    lake = ParquetLake.open(config.lake_root)
    lake.fs.delete_dir(f"{lake.root}/_ids")
    index = IdIndex(lake, "raw_conversations", RAW_CONVERSATIONS, "conversation_id", "started_at")
    assert "c-move" in index.day(D1.isoformat()).column("id").to_pylist()
    ingest(config, D2, D3)
    assert_one_row_per_id(lake, written)
    assert lake.assets() == ["quarantined_conversations", "quarantined_messages", "raw_conversations", "raw_messages"]


# --- the whole platform with MongoDB and S3 (integration) -------------------------------------------------


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Config]:
    """A files-source configuration with an S3 lake and MongoDB (a database and prefix of its own)."""
    with stores_config(tmp_path, date(2024, 1, 1)) as config:
        yield config


def assert_lake_equals_mongodb(config: Config) -> None:
    lake, store = stores_lake(config), MongoStore(config.mongodb_uri, config.mongodb_database)
    try:
        for asset in MIRRORED:
            keys = lake.keys(asset)
            lake_rows = {k: n for k, n in lake.row_counts(asset, keys).items() if n}
            assert lake_rows == store.counts_by_day(stored_table(asset)), asset
    finally:
        store.close()


def status(config: Config, monkeypatch: pytest.MonkeyPatch) -> str:
    for setting, value in (
        (Config.home, str(config.home)),
        (Config.s3_bucket, config.s3_bucket),
        (Config.s3_prefix, config.s3_prefix),
        (Config.s3_endpoint_url, config.s3_endpoint_url),
        (Config.mongodb_uri, config.mongodb_uri),
        (Config.mongodb_database, config.mongodb_database),
    ):
        monkeypatch.setenv(setting.env, value)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    return result.output


def run_daily(platform: Platform, selection: dg.AssetSelection, day: date) -> dg.ExecuteInProcessResult:
    """One in-process run of a selection of daily assets or checks, with the platform's checks."""
    job = dg.define_asset_job("daily", selection=selection, partitions_def=platform.graph.partitions.daily)
    definitions = dg.Definitions(
        assets=platform.graph.assets, asset_checks=platform.checks, jobs=[job], resources=platform.resources
    )
    return definitions.resolve_job_def("daily").execute_in_process(partition_key=day.isoformat())


@pytest.mark.integration
def test_a_moved_id_leaves_one_row_in_s3_and_mongodb_and_the_runner_rebuilds_the_old_day(
    stores: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = stores
    write_exports(config.source_folder, moved=False)
    materialize_days(config, D1, D2)
    written = write_exports(config.source_folder)  # the third day's export brings the newer versions
    summary = materialize_days(config, D3, D3)
    assert any("rewritten days" in step.name and D1.isoformat() in step.partitions for step in summary.steps)
    lake = stores_lake(config)
    assert_one_row_per_id(lake, written)
    for asset, column in (("enriched_messages", "message_id"), ("conversation_categories", "conversation_id")):
        table = lake.read(asset, lake.keys(asset), stored_table(asset).schema)
        ids = table.column(column).to_pylist()
        assert len(ids) == len(set(ids)), asset
        moved = "m-move" if column == "message_id" else "c-move"
        day = pc.cast(
            table.filter(pc.equal(table.column(column), moved)).column(stored_table(asset).time_column), pa.date32()
        )
        assert day.to_pylist() == [D3], asset
    daily = lake.read("daily_rollups", lake.keys("daily_rollups"), stored_table("daily_rollups").schema)
    totals = daily.filter(pc.equal(daily.column("dimension"), "all"))
    assert sum(totals.column("conversations").to_pylist()) == len(
        {r["conversation_id"] for r in written["conversations"]}
    )
    assert_lake_equals_mongodb(config)
    assert "every mirrored partition agrees" in status(config, monkeypatch)


@pytest.mark.integration
def test_mongodb_down_after_the_lake_write_shows_as_lag_and_fails_the_check(
    stores: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = stores
    write_exports(config.source_folder)
    materialize_days(config, D1, D3)
    assert_lake_equals_mongodb(config)
    down = Config(
        home=config.home,
        start_date=config.start_date,
        s3_bucket=config.s3_bucket,
        s3_prefix=config.s3_prefix,
        s3_endpoint_url=config.s3_endpoint_url,
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=500",
        mongodb_database=config.mongodb_database,
    )
    # the day's categories are deleted from MongoDB, then rewritten while MongoDB is down
    store = MongoStore(config.mongodb_uri, config.mongodb_database)
    start = datetime(D2.year, D2.month, D2.day, tzinfo=timezone.utc)
    store.db["conversations"].delete_many({"started_at": {"$gte": start, "$lt": start + timedelta(days=1)}})
    platform = Platform.build(down)
    failed = dg.materialize(
        platform.graph.assets,
        selection=[platform.graph.categories.key],
        partition_key=D2.isoformat(),
        resources=platform.resources,
        raise_on_error=False,
    )
    assert not failed.success
    text = status(config, monkeypatch)
    assert f"conversation_categories: MongoDB behind the lake in 1 partition(s), 3 row(s); missing {D2}" in text
    # what the check of the asset compares, with MongoDB back, names the partition; a rerun repairs it
    window_start = datetime(D1.year, D1.month, D1.day, tzinfo=timezone.utc)
    keys = [d.isoformat() for d in DAYS]
    differ = compare_partitions(
        stores_lake(config),
        store,
        "conversation_categories",
        stored_table("conversation_categories"),
        keys,
        window_start,
        window_start + timedelta(days=3),
    )
    assert differ == [PartitionCounts(D2.isoformat(), 3, 0)]
    platform = Platform.build(config)
    repaired = run_daily(platform, dg.AssetSelection.assets(platform.graph.categories.key), D2)
    assert [(e.check_name, e.passed) for e in repaired.get_asset_check_evaluations()] == [(MATCHES_MONGODB, True)]
    assert "every mirrored partition agrees" in status(config, monkeypatch)
    store.close()


# --- NocoDB (integration) --------------------------------------------------------------------------------


def nocodb_row(kind: str, rid: str, at: str, cid: str = "") -> dict[str, object]:
    if kind == "conversations":
        return {"conversation_id": rid, "user_id": "u1", "channel": "web", "started_at": at, "status": "resolved"}
    return {"message_id": rid, "conversation_id": cid or "c", "role": "user", "text": "where is it", "sent_at": at}


@pytest.mark.integration
def test_nocodb_rows_move_between_days_and_out_of_range_rows_are_quarantined(tmp_path: Path) -> None:
    server()
    today = datetime.now(timezone.utc).date()
    first, second = today - timedelta(days=2), today - timedelta(days=1)
    graph = asset_graph()
    checks = [build_reconciliation_check(e, t, graph.partitions.daily) for e, t in graph.entities.items()]
    bases = new_base("it-ids")
    title, tables = next(bases)
    try:
        nocodb = resource(title)
        table_of = {"conversations": tables.conversations, "messages": tables.messages}
        row_ids: dict[str, dict[str, int]] = {"conversations": {}, "messages": {}}
        for entity in ("conversations", "messages"):
            rows = [
                nocodb_row(entity, f"{entity[0]}A", f"{first} 10:00:00", "cA"),
                nocodb_row(entity, f"{entity[0]}B", f"{first} 11:00:00", "cB"),
                nocodb_row(entity, f"{entity[0]}C", f"{second} 10:00:00", "cC"),
                nocodb_row(entity, f"{entity[0]}-dup", f"{first} 12:00:00", "c-dup"),
                nocodb_row(entity, f"{entity[0]}-1900", "1900-01-01 00:00:00"),
                nocodb_row(entity, f"{entity[0]}-9999", "9999-12-31 23:59:59"),
            ]
            inserted = client().insert(table_of[entity], rows)
            row_ids[entity] = {str(r[ID[entity]]): i for r, i in zip(rows, inserted, strict=True)}
        resources = lake_resources(tmp_path / "lake", nocodb)
        lake = ParquetLake.open(str(tmp_path / "lake"))

        def run(start: date, end: date) -> dg.ExecuteInProcessResult:
            tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}
            result = dg.materialize([*graph.ingest, *checks], resources=resources, tags=tags, raise_on_error=False)
            evaluations = result.get_asset_check_evaluations()
            names = {e.check_name for e in evaluations}
            assert result.success and names == {ACCOUNTED, "matches_nocodb"}, evaluations
            assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]
            return result

        run(first, today)
        for entity in ("conversations", "messages"):
            schema = stored_table(f"quarantined_{entity}").schema
            quarantine = lake.read(f"quarantined_{entity}", [today.isoformat()], schema).to_pylist()
            field = "started_at" if entity == "conversations" else "sent_at"
            assert sorted((q["locator"], q["reason"].split(":")[0]) for q in quarantine) == sorted(
                (f"nocodb:{entity}/{row_ids[entity][f'{entity[0]}-{year}']}", "timestamp out of range")
                for year in (1900, 9999)
            ), quarantine
            assert all(field in q["reason"] for q in quarantine)
        # a second row of an id on a later day (a newer version), and a row edited to another day
        for entity in ("conversations", "messages"):
            later = nocodb_row(entity, f"{entity[0]}-dup", f"{second} 09:00:00", "c-dup")
            row_ids[entity]["dup-2"] = client().insert(table_of[entity], [later])[0]
            field = "started_at" if entity == "conversations" else "sent_at"
            client().update(table_of[entity], [{"Id": row_ids[entity][f"{entity[0]}A"], field: f"{second} 08:00:00"}])
        moved = run(second, second)
        reported = {(e.asset_key.path[-1], e.partition) for e in moved.get_asset_materialization_events()}
        assert {("raw_conversations", str(first)), ("raw_messages", str(first))} <= reported
        expected = {
            "conversations": {str(first): ["cB"], str(second): ["cA", "c-dup", "cC"]},
            "messages": {str(first): ["mB"], str(second): ["mA", "m-dup", "mC"]},
        }
        for entity in ("conversations", "messages"):
            days = {k: sorted(v) for k, v in raw_ids(lake, entity).items() if v}
            assert days == {k: sorted(v) for k, v in expected[entity].items()}, entity
        before = snapshot(lake)
        run(first, first)  # the older row of the moved id is read again, and stays out
        run(first, today)
        assert snapshot(lake) == before
    finally:
        bases.close()
