"""The files source and validation: every record read ends up in exactly one place.

Raw on the UTC day of its own timestamp (whichever dated file holds it), or quarantined with a reason
on the day its file arrived, or counted as a duplicate; counted per file from the input.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conv_analytics.sources import files as files_module
from conv_analytics.sources.base import Batch, RawRecord, RecordTable, SourceError, normalize, read_ahead
from conv_analytics.sources.files import FilesSource
from conv_analytics.text.redact import pseudonymize

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
DAY = date(2026, 11, 2)


def window(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def message(message_id: str, sent_at: str, text: str = "hi", **extra: object) -> dict[str, object]:
    return {
        "message_id": message_id,
        "conversation_id": "c1",
        "role": "user",
        "text": text,
        "sent_at": sent_at,
        **extra,
    }


def write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def read_day(source: FilesSource, day: date, entity: str = "messages") -> Batch:
    start, end = window(day)
    return normalize(entity, source.fetch(entity, start, end), start, end, now=source.now)


def read_days(source: FilesSource, days: list[date]) -> dict[date, Batch]:
    return {day: read_day(source, day) for day in days}


@pytest.fixture(autouse=True)
def _fresh_day_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "_DAYS_BY_FILE", {})


# --- JSONL -------------------------------------------------------------------------------------------------


def test_jsonl_splits_on_newline_only(tmp_path: Path) -> None:
    texts = ["line\u2028separator", "next\u0085line", "para\u2029graph", "form\x0cfeed", "vertical\x0btab", "cr\ronly"]
    records = [message(f"m{i}", "2026-11-02T10:00:00Z", text) for i, text in enumerate(texts)]
    # ensure_ascii=False writes those characters unescaped, as many exporters do
    (tmp_path / f"messages-{DAY}.jsonl").write_text(
        "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\r\n", encoding="utf-8"
    )
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert batch.quarantine.num_rows == 0
    assert batch.table.column("text").to_pylist() == texts
    counts = batch.counts[f"messages-{DAY}.jsonl"]
    assert list(batch.counts) == [f"messages-{DAY}.jsonl"] and counts.read == counts.raw == 6


def test_jsonl_with_a_byte_order_mark(tmp_path: Path) -> None:
    line = json.dumps(message("m1", "2026-11-02T10:00:00Z"))
    (tmp_path / f"messages-{DAY}.jsonl").write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n")
    assert read_day(FilesSource(tmp_path, now=NOW), DAY).table.column("message_id").to_pylist() == ["m1"]


# --- CSV ---------------------------------------------------------------------------------------------------

CSV_HEADER = "message_id,conversation_id,role,text,sent_at\n"


def test_csv_with_excel_byte_order_mark(tmp_path: Path) -> None:
    body = CSV_HEADER + "m1,c1,user,hello,2026-11-02 10:00:00\nm2,c1,bot,hi there,2026-11-02 10:00:05\n"
    (tmp_path / f"messages-{DAY}.csv").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert batch.quarantine.num_rows == 0
    assert batch.table.column("message_id").to_pylist() == ["m1", "m2"]


def test_csv_unterminated_quote_costs_only_its_own_record(tmp_path: Path) -> None:
    (tmp_path / f"messages-{DAY}.csv").write_text(
        CSV_HEADER
        + "m1,c1,user,hello,2026-11-02 10:00:00\n"
        + 'm2,c1,user,"never closed,2026-11-02 10:01:00\n'
        + "m3,c1,user,fine,2026-11-02 10:02:00\n"
        + 'm4,c1,user,"a quoted ""word"", and a\nline break",2026-11-02 10:03:00\n'
        + 'm5,c1,user,5" screen,2026-11-02 10:04:00\n'
        + 'm6,c1,user,"also open,2026-11-02 10:05:00\n'
        + "m7,c1,user,after it,2026-11-02 10:06:00\n"
        + 'm8,c1,user,"open at the end,2026-11-02 10:07:00\n',
        encoding="utf-8",
    )
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert batch.table.column("message_id").to_pylist() == ["m1", "m3", "m4", "m5", "m7"]
    assert batch.table.column("text").to_pylist()[2:4] == ['a quoted "word", and a\nline break', '5" screen']
    name = f"messages-{DAY}.csv"
    reasons = {r["locator"]: r["reason"] for r in batch.quarantine.to_pylist()}
    assert reasons == {
        f"{name}:3": "unterminated quote",
        f"{name}:8": "unterminated quote",
        f"{name}:10": "unterminated quote",
    }
    counts = batch.counts[name]
    assert (counts.read, counts.raw, counts.quarantined, counts.duplicates) == (8, 5, 3, 0)


def test_csv_line_ends_and_oversized_fields(tmp_path: Path) -> None:
    rows = [
        "m1,c1,user,old Mac line ends,2026-11-02 10:00:00",
        "m2,c1,user,line\u2028separator and next\u0085line,2026-11-02 10:01:00",
        "m3,c1,user," + "x" * 200_000 + ",2026-11-02 10:02:00",  # over the csv module's field limit
        "m4,c1,user,still read,2026-11-02 10:03:00",
    ]
    content = "\r".join([CSV_HEADER.rstrip("\n"), *rows]) + "\r"
    (tmp_path / f"messages-{DAY}.csv").write_text(content, encoding="utf-8", newline="")
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert batch.table.column("message_id").to_pylist() == ["m1", "m2", "m4"]
    assert batch.table.column("text").to_pylist()[1] == "line\u2028separator and next\u0085line"
    assert [r[:25] for r in batch.quarantine.column("reason").to_pylist()] == ["unreadable CSV: field lar"]


# --- the day a record belongs to ---------------------------------------------------------------------------


def test_records_go_to_the_day_of_their_own_timestamp(tmp_path: Path) -> None:
    before, day, after = DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)
    write_jsonl(
        tmp_path / f"messages-{day}.jsonl",
        [
            message("m-own", "2026-11-02T12:00:00Z"),
            message("m-next", "2026-11-02T23:30:00-05:00"),  # 04:30 UTC on the 3rd
            message("m-prev", "2026-11-02T00:30:00+02:00"),  # 22:30 UTC on the 1st
            message("m-week-late", "2026-10-26T09:00:00Z"),  # a late row, a week old
        ],
    )
    write_jsonl(tmp_path / f"messages-{after}.jsonl", [message("m-back", "2026-11-02T23:59:59Z")])
    source = FilesSource(tmp_path, now=NOW)
    ids = {d: read_day(source, d).table.column("message_id").to_pylist() for d in (before, day, after)}
    assert ids == {before: ["m-prev"], day: ["m-own", "m-back"], after: ["m-next"]}
    assert read_day(source, date(2026, 10, 26)).table.column("message_id").to_pylist() == ["m-week-late"]


@pytest.mark.parametrize(
    ("sent_at", "reason"),
    [
        ("1900-01-01T00:00:00Z", "timestamp out of range: sent_at '1900-01-01T00:00:00Z'"),
        ("1999-12-31T23:59:59Z", "timestamp out of range: sent_at '1999-12-31T23:59:59Z'"),
        ("9999-12-31T23:59:59Z", "timestamp out of range: sent_at '9999-12-31T23:59:59Z'"),
        ("2026-12-02T00:00:00Z", "timestamp out of range: sent_at '2026-12-02T00:00:00Z'"),  # > a day ahead
        ("9999-12-31T23:59:59-05:00", "bad sent_at: '9999-12-31T23:59:59-05:00'"),  # no UTC time exists
        (0, "timestamp out of range: sent_at 0"),  # epoch zero
    ],
)
def test_timestamps_out_of_range_are_quarantined_on_the_file_day(tmp_path: Path, sent_at: object, reason: str) -> None:
    write_jsonl(tmp_path / f"messages-{DAY}.jsonl", [message("m1", "2026-11-02T10:00:00Z"), message("m2", sent_at)])
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert batch.table.column("message_id").to_pylist() == ["m1"]
    assert batch.quarantine.column("reason").to_pylist() == [reason]
    assert batch.quarantine.column("partition_date").to_pylist() == [DAY]


def test_a_record_a_day_ahead_of_now_is_still_in_range(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "messages-2026-11-30.jsonl", [message("m1", "2026-12-01T11:00:00Z")])
    batch = read_day(FilesSource(tmp_path, now=NOW), date(2026, 12, 1))
    assert batch.table.column("message_id").to_pylist() == ["m1"]


def test_conversations_use_started_at_and_check_ended_at(tmp_path: Path) -> None:
    base = {"user_id": "u1", "channel": "web", "status": "resolved"}
    write_jsonl(
        tmp_path / f"conversations-{DAY}.jsonl",
        [
            {**base, "conversation_id": "c1", "started_at": "2026-11-02T23:50:00-01:00", "ended_at": None},
            {**base, "conversation_id": "c2", "started_at": "2026-11-02T10:00:00Z", "ended_at": "9999-12-31"},
        ],
    )
    source = FilesSource(tmp_path, now=NOW)
    batches = {d: read_day(source, d, "conversations") for d in (DAY, DAY + timedelta(days=1))}
    assert batches[DAY + timedelta(days=1)].table.column("conversation_id").to_pylist() == ["c1"]
    assert batches[DAY].table.num_rows == 0
    assert batches[DAY].quarantine.column("reason").to_pylist() == ["timestamp out of range: ended_at '9999-12-31'"]


# --- accounting ----------------------------------------------------------------------------------------------


def test_every_record_read_is_in_exactly_one_place(tmp_path: Path) -> None:
    days = [DAY + timedelta(days=i) for i in range(-2, 4)]
    inputs: dict[str, int] = {}
    for day in days[1:-1]:
        name = f"messages-{day}.jsonl"
        lines = [
            json.dumps(message(f"{day}-a", f"{day}T08:00:00Z")),
            json.dumps(message(f"{day}-late", f"{day}T23:30:00-04:00")),  # the next UTC day
            json.dumps(message(f"{day}-early", f"{day}T00:10:00+01:00")),  # the day before
            json.dumps(message(f"{day}-bad", "1900-01-01T00:00:00Z")),
            json.dumps(message(f"{day}-a", f"{day}T08:00:00Z", text="edited")),  # a duplicate: last wins
            json.dumps(message("shared", f"{DAY}T09:00:00Z", text=f"from {day}")),  # the same id in every file
            '{"message_id": "broken\u2028", ',
            json.dumps(message(f"{day}-role", f"{day}T09:00:00Z", role="wizard")),
        ]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        inputs[name] = len(lines)
    undated = "messages-export.csv"
    (tmp_path / undated).write_text(
        CSV_HEADER
        + f'u1,c1,user,hi,{DAY} 11:00:00\nu2,c1,user,"open,{DAY} 11:00:00\nu3,c1,user,yo,{days[-1]} 01:00:00\n',
        encoding="utf-8",
    )
    arrived = window(DAY)[0].timestamp() + 3600  # a file without a date arrives on its modification day
    os.utime(tmp_path / undated, (arrived, arrived))
    inputs[undated] = 3

    batches = read_days(FilesSource(tmp_path, now=NOW), days)
    totals: dict[str, list[int]] = {}
    for batch in batches.values():
        for name, counts in batch.counts.items():
            assert counts.balanced and counts.other_days == 0
            total = totals.setdefault(name, [0, 0, 0, 0])
            for k, value in enumerate((counts.read, counts.raw, counts.quarantined, counts.duplicates)):
                total[k] += value
    assert {name: total[0] for name, total in totals.items()} == inputs
    raw_ids = [i for batch in batches.values() for i in batch.table.column("message_id").to_pylist()]
    assert len(raw_ids) == len(set(raw_ids))  # no id on two days
    assert sum(t[1] for t in totals.values()) == len(raw_ids)
    quarantined = sum(batch.quarantine.num_rows for batch in batches.values())
    dated = len(days) - 2
    assert sum(t[2] for t in totals.values()) == quarantined == 3 * dated + 1  # 1900, broken JSON, wizard; the quote
    assert sum(t[3] for t in totals.values()) == dated + (dated - 1)  # each file's edit; "shared" kept once
    assert sum(t[0] for t in totals.values()) == len(raw_ids) + quarantined + 2 * dated - 1
    texts = dict(
        zip(
            batches[DAY].table.column("message_id").to_pylist(),
            batches[DAY].table.column("text").to_pylist(),
            strict=True,
        )
    )
    assert texts[f"{DAY}-a"] == "edited"
    assert texts["shared"] == f"from {days[-2]}"  # files are read in name order: the last one wins


def spy(read: Callable[..., Any], opened: list[str]) -> Callable[..., Any]:
    """`read` (a FilesSource reader), noting the name of each file it opens."""

    def reading(self: FilesSource, path: Path, *args: object) -> Any:
        opened.append(path.name)
        return read(self, path, *args)

    return reading


def test_a_day_reads_only_the_files_that_hold_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        day = DAY + timedelta(days=i)
        write_jsonl(tmp_path / f"messages-{day}.jsonl", [message(f"m{i}", f"{day}T23:30:00-03:00")])
    source = FilesSource(tmp_path, now=NOW)
    read_day(source, DAY)  # learns every file's days
    opened: list[str] = []
    for reader in ("_table", "_records"):  # read whole, or record by record
        monkeypatch.setattr(FilesSource, reader, spy(getattr(FilesSource, reader), opened))
    batch = read_day(source, DAY + timedelta(days=3))
    assert batch.table.column("message_id").to_pylist() == ["m2"]  # 23:30 -03:00 is the next UTC day
    assert opened == [f"messages-{DAY + timedelta(days=2)}.jsonl"]


def test_learning_a_files_days_reads_only_its_time_field_unless_it_holds_a_wanted_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        day = DAY + timedelta(days=i)
        write_jsonl(tmp_path / f"messages-{day}.jsonl", [message(f"m{i}", f"{day}T10:00:00Z")])
    opened: list[str] = []
    for reader in ("_table", "_records"):
        monkeypatch.setattr(FilesSource, reader, spy(getattr(FilesSource, reader), opened))
    source = FilesSource(tmp_path, now=NOW)
    assert read_day(source, DAY + timedelta(days=1)).table.column("message_id").to_pylist() == ["m1"]
    assert opened == [f"messages-{DAY + timedelta(days=1)}.jsonl"]
    assert read_day(source, DAY + timedelta(days=3)).table.column("message_id").to_pylist() == ["m3"]
    assert opened[1:] == [f"messages-{DAY + timedelta(days=3)}.jsonl"]


def test_a_file_read_record_by_record_is_found_on_the_days_its_time_field_gives(tmp_path: Path) -> None:
    # a number as a conversation id: Arrow's reader refuses the file whole, each record is read alone
    late = [message(f"m{i}", f"{DAY + timedelta(days=1)}T0{i}:00:00Z", conversation_id=7) for i in range(2)]
    write_jsonl(tmp_path / f"messages-{DAY}.jsonl", late)
    write_jsonl(tmp_path / f"messages-{DAY + timedelta(days=2)}.jsonl", [message("m9", f"{DAY}T10:00:00Z")])
    source = FilesSource(tmp_path, now=NOW)
    assert read_day(source, DAY).table.column("message_id").to_pylist() == ["m9"]  # learns both files' days
    batch = read_day(source, DAY + timedelta(days=1))
    assert batch.table.column("message_id").to_pylist() == ["m0", "m1"]
    assert batch.table.column("conversation_id").to_pylist() == ["7", "7"]


def test_quarantined_records_are_redacted_in_every_field(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / f"messages-{DAY}.jsonl",
        [
            message(
                "m1", "2026-11-02T10:00:00Z", role="wizard", user="ana@example.com", note="IBAN DE89370400440532013000"
            ),
            message("m2", "not a time", text="call +44 7400 123456"),
        ],
    )
    (tmp_path / f"messages-{DAY}.jsonl").open("a", encoding="utf-8").write('{"text": "ssn 536-90-4399", broken\n')
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    stored = "\n".join(batch.quarantine.column("record").to_pylist())
    for secret in ("ana@example.com", "DE89370400440532013000", "7400 123456", "536-90-4399"):
        assert secret not in stored
    assert stored.count("[EMAIL]") == 1 and "[IBAN]" in stored and "[PHONE]" in stored and "[SSN]" in stored
    assert '"message_id": "m1"' in stored  # ids stay readable


def test_normalize_counts_records_a_source_should_not_have_yielded() -> None:
    start, end = window(DAY)
    records = [
        RawRecord("x.jsonl:1", message("m1", "2026-11-02T10:00:00Z")),
        RawRecord("x.jsonl:2", message("m2", "2026-11-05T10:00:00Z")),
    ]
    counts = normalize("messages", records, start, end, now=NOW).counts["x.jsonl"]
    assert (counts.read, counts.raw, counts.other_days, counts.balanced) == (2, 1, 1, True)


def test_the_day_index_is_shared_through_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports, index = tmp_path / "exports", tmp_path / "state" / "files-index.json"
    exports.mkdir()
    for i in range(4):
        day = DAY + timedelta(days=i)
        write_jsonl(exports / f"messages-{day}.jsonl", [message(f"m{i}", f"{day}T12:00:00Z")])
    read_day(FilesSource(exports, now=NOW, index_path=index), DAY)
    assert len(json.loads(index.read_text(encoding="utf-8"))) == 4

    monkeypatch.setattr(files_module, "_DAYS_BY_FILE", {})  # another process
    opened: list[str] = []
    for reader in ("_table", "_records"):
        monkeypatch.setattr(FilesSource, reader, spy(getattr(FilesSource, reader), opened))
    batch = read_day(FilesSource(exports, now=NOW, index_path=index), DAY + timedelta(days=2))
    assert batch.table.column("message_id").to_pylist() == ["m2"]
    assert opened == [f"messages-{DAY + timedelta(days=2)}.jsonl"]

    # a file that changes is read again, and its stale entry leaves the index
    changed = [message("m0", f"{DAY}T12:00:00Z"), message("n", f"{DAY}T13:00:00Z")]
    write_jsonl(exports / f"messages-{DAY}.jsonl", changed)
    assert read_day(FilesSource(exports, now=NOW, index_path=index), DAY).table.num_rows == 2
    assert len(json.loads(index.read_text(encoding="utf-8"))) == 4


def test_a_record_from_the_future_moves_to_its_day_when_the_clock_gets_there(tmp_path: Path) -> None:
    write_jsonl(tmp_path / f"messages-{DAY}.jsonl", [message("m1", "2026-12-10T10:00:00Z")])
    early = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert early.quarantine.column("reason").to_pylist() == ["timestamp out of range: sent_at '2026-12-10T10:00:00Z'"]
    later = FilesSource(tmp_path, now=datetime(2026, 12, 10, tzinfo=timezone.utc))
    assert read_day(later, date(2026, 12, 10)).table.column("message_id").to_pylist() == ["m1"]
    assert read_day(later, DAY).quarantine.num_rows == 0


def test_reasons_quoting_a_rejected_value_are_redacted(tmp_path: Path) -> None:
    write_jsonl(tmp_path / f"messages-{DAY}.jsonl", [message("m1", "call me on +44 7400 123456")])
    batch = read_day(FilesSource(tmp_path, now=NOW), DAY)
    assert batch.quarantine.column("reason").to_pylist() == ["bad sent_at: 'call me on [PHONE]'"]
    assert batch.reasons == {"bad sent_at": 1}


def test_user_ids_are_pseudonymised_in_raw_rows_and_in_the_quarantine(tmp_path: Path) -> None:
    base = {"channel": "web", "status": "resolved", "started_at": "2026-11-02T10:00:00Z"}
    users = ["ana@example.com", "bob@example.com", "ana@example.com", "u-42", "bob@example.com"]
    records = [{**base, "conversation_id": f"c{i}", "user_id": user} for i, user in enumerate(users)]
    records.append({**base, "conversation_id": "c-bad", "user_id": "carol@example.com", "status": "lost"})
    write_jsonl(tmp_path / f"conversations-{DAY}.jsonl", records)
    start, end = window(DAY)
    source = FilesSource(tmp_path, now=NOW)
    key = "k" * 32
    batch = normalize(
        "conversations", source.fetch("conversations", start, end), start, end, now=NOW, pseudonym_key=key
    )
    pseudonyms = batch.table.column("user_id").to_pylist()
    assert len(set(pseudonyms)) == len(set(users)) == 3  # distinct users unchanged
    assert pseudonyms[0] == pseudonyms[2] and pseudonyms[1] == pseudonyms[4]
    assert pseudonyms == pseudonymize(users, key).to_pylist()
    stored = json.loads(batch.quarantine.column("record")[0].as_py())
    assert stored["user_id"] == pseudonymize(["carol@example.com"], key)[0].as_py()
    everything = json.dumps(batch.table.to_pylist(), default=str) + json.dumps(
        batch.quarantine.to_pylist(), default=str
    )
    assert "@example.com" not in everything and "u-42" not in everything and key not in everything


# --- the columnar fast path ----------------------------------------------------------------------------------

MIXED_MESSAGES = [
    message("m1", "2026-11-02T10:00:00Z"),
    message(" m2 ", "2026-11-02T10:00:01.250Z"),
    message("m13", "2026-11-02T10:00:09Z", role="User"),
    message("m3", "2026-11-02T10:00:02.123456+00:00", role="bot", text=None),
    message("m4", "2026-11-02T11:00:02+01:00"),
    message("m5", "2026-11-02T10:00:03.5Z"),
    message("m6", " 2026-11-02T10:00:04Z"),
    message("m7", "2026-11-02 10:00:05"),
    message("m8", "1900-01-01T00:00:00Z"),
    message("m9", "2026-11-03T10:00:00Z"),
    message("m1", "2026-11-02T09:00:00Z", text="second version"),
    message("m2", "2026-11-02T09:30:00Z"),
    message("m10", "2026-11-02T10:00:06Z", role="robot"),
    message("", "2026-11-02T10:00:07Z"),
    message("m11", "2026-11-02T10:00:08Z", text="call +44 20 7946 0958"),
]


def conversation(conversation_id: str, user_id: str, channel: object, **extra: object) -> dict[str, object]:
    return {"conversation_id": conversation_id, "user_id": user_id, "channel": channel, **extra}


STARTED = "2026-11-02T10:00:00Z"
MIXED_CONVERSATIONS = [
    conversation("c1", "u1", "web", started_at=STARTED),
    conversation("c2", "u2", "Web ", started_at=STARTED, status="open"),
    conversation("c7", "u7", "web", started_at=STARTED, status=None),
    conversation("c3", "u3", "app", started_at=STARTED, ended_at="", status="resolved"),
    conversation("c4", "u4", "sms", started_at=STARTED, ended_at="2026-11-02T10:05:00.000Z", status="abandoned"),
    conversation("c5", "u5", "sms", started_at=STARTED, ended_at="9999-12-31T00:00:00Z", status="open"),
    conversation("c6", "u6", "web", started_at=STARTED, status="Lost"),
    conversation("c1", "u9", "email", started_at="2026-11-02T08:00:00Z", status="open"),
]


@pytest.mark.parametrize(
    ("entity", "records", "fast"),
    [
        ("messages", MIXED_MESSAGES, True),
        ("messages", [*MIXED_MESSAGES, message(12, "2026-11-02T10:00:00Z")], False),  # a number as id
        ("messages", [*MIXED_MESSAGES, message("m12", "2026-11-02T10:00:00Z", text=b"hi")], False),
        ("messages", [*MIXED_MESSAGES, message("m12", "2026-02-30T10:00:00Z")], False),  # no such day
        ("conversations", MIXED_CONVERSATIONS, True),
    ],
)
def test_the_columnar_path_gives_what_the_per_record_path_gives(
    monkeypatch: pytest.MonkeyPatch, entity: str, records: list[dict[str, object]], fast: bool
) -> None:
    """Plain records are validated as Arrow columns, the rest one by one; the batch is the same as
    when every record is validated one by one (rows, order, quarantine, counts per origin)."""
    from conv_analytics.sources import base

    start, end = window(DAY)
    raw = [RawRecord(f"{'ab'[i % 2]}.jsonl:{i + 1}", r) for i, r in enumerate(records)]
    plain = base._plain_records(entity, records, NOW)
    assert (plain is not None and 0 < plain[0].sum() < len(records)) == fast
    columnar = normalize(entity, raw, start, end, now=NOW)
    monkeypatch.setattr(base, "_plain_records", lambda *args: None)
    one_by_one = normalize(entity, raw, start, end, now=NOW)
    assert columnar.table.equals(one_by_one.table) and columnar.table.num_rows >= 3
    assert columnar.quarantine.equals(one_by_one.quarantine) and columnar.quarantine.num_rows >= 2
    assert (columnar.duplicates, columnar.reasons, columnar.counts) == (
        one_by_one.duplicates,
        one_by_one.reasons,
        one_by_one.counts,
    )
    assert all(c.balanced for c in columnar.counts.values())


# --- files read whole by Arrow's JSON reader -----------------------------------------------------------------

VERSIONED = [
    message("m1", "2026-11-02T10:00:00Z", UpdatedAt="2026-11-05T00:00:00Z"),
    message("m2", "2026-11-02T10:00:01Z", CreatedAt="2026-11-04 08:00:00", UpdatedAt="not a time"),
    message("m3", "2026-12-25T10:00:00Z"),  # ahead of NOW: on the file's day until its own is near
    message("m4", "2026-11-03T00:30:00+02:00", extra={"nested": [1, 2]}),
    {"message_id": "m5", "conversation_id": "c1", "role": "user", "text": "no time"},
]
PLAIN_LINES = [json.dumps(r, ensure_ascii=False) for r in [*MIXED_MESSAGES, *VERSIONED]]


@pytest.mark.parametrize(
    ("lines", "whole"),
    [
        (PLAIN_LINES, True),
        ([*PLAIN_LINES[:3], "", *PLAIN_LINES[3:]], False),  # a blank line
        ([*PLAIN_LINES[:3], "  \r", *PLAIN_LINES[3:]], False),
        ([PLAIN_LINES[0] + PLAIN_LINES[1], "", *PLAIN_LINES[2:]], False),  # two objects on a line, one line blank
        ([*PLAIN_LINES, json.dumps(message(7, "2026-11-02T10:00:00Z"))], False),  # a number as id
        ([*PLAIN_LINES, '{"message_id": "m9", "message_id": "m10"}'], False),  # a key twice
        ([*PLAIN_LINES, '{"message_id": "m9", "text": "\\ud800"}'], False),  # a lone surrogate escape
        ([*PLAIN_LINES, "[1, 2]", "{not json"], False),
        ([*PLAIN_LINES, "  "], False),  # a last line of blanks without a line break
        # a byte order mark, then a record set aside (the first line, re-read for the quarantine)
        (["\ufeff" + json.dumps(message("m0", "2026-11-02T09:00:00Z", role="robot")), *PLAIN_LINES], True),
    ],
)
def test_a_file_read_whole_gives_what_reading_it_record_by_record_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], whole: bool
) -> None:
    """Each day's batch is the same (rows, quarantine, counts, versions, origins) whether a file is
    read as one Arrow table or line by line; a file Arrow could misnumber is read line by line."""
    (tmp_path / f"messages-{DAY}.jsonl").write_text("\n".join(lines) + ("" if lines[-1].isspace() else "\n"))
    (tmp_path / f"messages-{DAY + timedelta(days=1)}.jsonl").write_text(
        "\r\n".join([json.dumps(message("m1", "2026-11-02T23:00:00Z", text="newer copy")), *PLAIN_LINES[8:]])
    )
    days = [DAY, DAY + timedelta(days=1)]
    source = FilesSource(tmp_path, now=NOW)
    first = list(source.fetch("messages", *window(DAY)))
    assert any(isinstance(r, RecordTable) for r in first) and any(isinstance(r, RawRecord) for r in first) != whole
    tables = {day: read_day(source, day) for day in days}
    monkeypatch.setattr(files_module, "_DAYS_BY_FILE", {})
    monkeypatch.setattr(FilesSource, "_table", lambda *args: None)
    records = {day: read_day(source, day) for day in days}
    for day in days:
        a, b = tables[day], records[day]
        assert a.table.equals(b.table) and a.quarantine.equals(b.quarantine), day
        assert a.versions.equals(b.versions) and a.origins == b.origins, day
        assert (a.duplicates, a.reasons, a.counts) == (b.duplicates, b.reasons, b.counts), day
    batch = tables[DAY]  # each kind of record took part: rows, set aside, older versions, change times
    assert batch.table.num_rows >= 8 and batch.quarantine.num_rows >= 7 and batch.duplicates >= 10
    assert batch.versions.column("changed").null_count <= batch.table.num_rows - 1


def test_renamed_columns_are_read_whole_unless_a_record_also_has_our_name(tmp_path: Path) -> None:
    columns = {"messages": {"text": "body", "sent_at": "time"}}
    renamed = [
        {**{k: v for k, v in r.items() if k not in ("text", "sent_at")}, "body": r["text"], "time": r["sent_at"]}
        for r in MIXED_MESSAGES
    ]
    write_jsonl(tmp_path / f"messages-{DAY}.jsonl", renamed)
    source = FilesSource(tmp_path, columns, now=NOW)
    start, end = window(DAY)
    found = list(source.fetch("messages", start, end))
    assert [type(r) for r in found] == [RecordTable]
    batch = normalize("messages", found, start, end, columns["messages"], now=NOW)
    expected = normalize(
        "messages", [RawRecord(f"x:{i}", r) for i, r in enumerate(MIXED_MESSAGES)], start, end, now=NOW
    )
    assert batch.table.equals(expected.table) and batch.quarantine.num_rows == expected.quarantine.num_rows
    # "text" and "body" both present: which wins is decided record by record, as rename_columns does
    write_jsonl(tmp_path / f"messages-{DAY}.jsonl", [{**renamed[0], "text": "ours"}, *renamed[1:]])
    files_module._DAYS_BY_FILE.clear()
    both = normalize("messages", source.fetch("messages", start, end), start, end, columns["messages"], now=NOW)
    assert both.table.column("text").to_pylist() == batch.table.column("text").to_pylist()


def test_a_file_cut_short_between_its_two_reads_loses_only_the_rows_read_again(tmp_path: Path) -> None:
    path = tmp_path / f"messages-{DAY}.jsonl"
    write_jsonl(path, [message("m1", "2026-11-02T10:00:00Z"), message(" m2 ", "2026-11-02T10:00:01Z")])
    start, end = window(DAY)
    found = list(FilesSource(tmp_path, now=NOW).fetch("messages", start, end))  # " m2 " is not plain
    path.write_text("")
    batch = normalize("messages", found, start, end, now=NOW)
    assert batch.table.column("message_id").to_pylist() == ["m1"]
    assert batch.quarantine.column("reason").to_pylist() == [files_module.CHANGED_WHILE_READ]
    assert batch.counts[path.name].balanced and batch.counts[path.name].read == 2


class _CountingSource:
    """Records per day, counting how many fetches run at once; `failing`: the day whose fetch fails."""

    name = "counting"

    def __init__(self, failing: date | None = None) -> None:
        self.failing = failing
        self.running = self.most_at_once = 0
        self.fetched: list[date] = []

    def fetch(self, entity: str, start: datetime, end: datetime):
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.01)
            day = start.date()
            if day == self.failing:
                raise SourceError(f"the {entity} of {day} could not be read")
            self.fetched.append(day)
            yield RawRecord(f"{day}:1", message("m", f"{day}T10:00:00Z"))
        finally:
            self.running -= 1


def test_read_ahead_gives_each_days_records_in_order_fetching_one_day_at_a_time() -> None:
    days = [DAY + timedelta(days=i) for i in range(5)]
    source = _CountingSource()
    seen = [(day, [r.locator for r in records]) for day, records in read_ahead(source, "messages", days)]
    assert seen == [(day, [f"{day}:1"]) for day in days]
    assert source.fetched == days and source.most_at_once == 1
    assert list(read_ahead(source, "messages", [])) == []


def test_read_ahead_raises_a_days_fetch_error_when_that_day_is_reached() -> None:
    days = [DAY + timedelta(days=i) for i in range(3)]
    source = _CountingSource(failing=days[1])
    reading = read_ahead(source, "messages", days)
    assert next(reading)[0] == days[0]
    with pytest.raises(SourceError, match=f"the messages of {days[1]} could not be read"):
        next(reading)
