"""The one interface every source (demo, files, NocoDB) offers, and the validation all records pass.

A source yields `RawRecord`s for one entity and one time window; `normalize` turns them into the
asset's Arrow table and a quarantine table of the records it had to set aside, each with its reason.
Records whose own timestamp is missing, unparseable or outside a sane range (`placement_time`) cannot
be placed by it, so sources assign them to the window of when they arrived (NocoDB `CreatedAt`, the
date in an export file's name), where they are quarantined. Every record handed to `normalize` is
counted once, per origin (file or table): read = raw + quarantined + duplicates (+ other_days, valid
records of a window the source should not have yielded them for).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics.dates import day_window
from conv_analytics.errors import PlatformError
from conv_analytics.schemas import (
    CONVERSATION_STATUSES,
    MESSAGE_ROLES,
    QUARANTINE,
    RAW_CONVERSATIONS,
    RAW_MESSAGES,
    TS,
)
from conv_analytics.text.arrow import without_surrogates
from conv_analytics.text.redact import DEFAULT_OPTIONS, RedactionOptions, pseudonymize, redact_record, redact_texts

Entity = Literal["conversations", "messages"]
ENTITIES: tuple[Entity, ...] = ("conversations", "messages")

# Our field names per entity; users whose tables name them otherwise map them with CONV_ANALYTICS_COLUMNS.
FIELDS: dict[Entity, tuple[str, ...]] = {
    "conversations": ("conversation_id", "user_id", "channel", "started_at", "ended_at", "status"),
    "messages": ("message_id", "conversation_id", "role", "text", "sent_at"),
}
TIME_FIELD: dict[Entity, str] = {"conversations": "started_at", "messages": "sent_at"}
ID_FIELD: dict[Entity, str] = {"conversations": "conversation_id", "messages": "message_id"}
# Timestamps outside [EARLIEST_TIME, now + MAX_AHEAD] are typos or placeholders (1900-01-01,
# 9999-12-31): such records go to quarantine on their arrival day instead of a day nobody reads.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
MAX_AHEAD = timedelta(days=1)
OUT_OF_RANGE = "timestamp out of range"
ROLE_ALIASES = {
    "bot": "assistant",
    "ai": "assistant",
    "customer": "user",
    "human": "agent",
    "operator": "agent",
}


class SourceError(PlatformError):
    """A source that cannot be read at all (bad credentials, missing table): one clear message."""


NEVER = datetime.min.replace(tzinfo=timezone.utc)
# Change-time fields a record may carry (NocoDB's own, or an export's): the newer version of an id wins.
CHANGE_FIELDS = ("UpdatedAt", "updated_at", "CreatedAt", "created_at")


@dataclass(frozen=True, order=True)
class Version:
    """Which of two records with the same id is the newer: the later change time (UpdatedAt, else
    CreatedAt; NEVER when the source has none), then the later place in the source (NocoDB's row Id,
    an export's date, file and line). Both are properties of the record, not of when a run read it,
    so the same records give the same winner whichever days are run, in whatever order."""

    changed: datetime = NEVER
    place: str = ""


def change_time(fields: Mapping[str, Any] | None) -> datetime:
    """A record's last change time, from the first of CHANGE_FIELDS that parses; NEVER without one."""
    for name in CHANGE_FIELDS:
        value = (fields or {}).get(name)
        if value is not None and (moment := parse_timestamp(value)) is not None:
            return moment
    return NEVER


@dataclass(frozen=True)
class RawRecord:
    """One record as a source found it: parsed fields, or the reason it could not be parsed."""

    locator: str  # where it came from, for the quarantine: "file.jsonl:12", "nocodb:messages/42"
    fields: Mapping[str, Any] | None
    error: str | None = None
    raw: str = ""  # the undecodable text, when fields is None
    version: Version = Version()  # orders the records of one id: the newest is kept


@dataclass(frozen=True)
class RecordTable:
    """Records of one origin read as columns: an export file that parsed whole, at Arrow's speed.

    `fields` has a string column per field the validation reads (the source's names, null where a
    record lacks the field); `changed` and `place` are each row's `Version` (`changed` is NEVER where
    the record has no change time; `place` ends with the row's line in the origin). `records(rows)`
    gives the chosen rows as whole `RawRecord`s, read again from the origin: the few that are not
    plain take the per-record validation, and the quarantine keeps every field they had.
    """

    origin: str
    fields: pa.Table
    changed: pa.Array
    place: pa.Array
    records: Callable[[Sequence[int]], list[RawRecord]]

    @property
    def num_rows(self) -> int:
        return self.fields.num_rows

    def take(self, rows: np.ndarray) -> RecordTable:
        """Only these rows (positions in this table), each keeping its version."""
        indices = pa.array(rows, pa.int64())
        whole = self.records
        return RecordTable(
            self.origin,
            self.fields.take(indices),
            self.changed.take(indices),
            self.place.take(indices),
            lambda chosen: whole([int(rows[i]) for i in chosen]),
        )


class Source(Protocol):
    """Yields the records of one entity whose time falls in [start, end), one by one or as tables."""

    name: str

    def fetch(self, entity: Entity, start: datetime, end: datetime) -> Iterator[RawRecord | RecordTable]: ...


def read_ahead(
    source: Source, entity: Entity, days: Sequence[date]
) -> Iterator[tuple[date, list[RawRecord | RecordTable]]]:
    """Each day's records, in order, the next day's fetched in a thread while the caller validates
    this one's. Fetching (Arrow's JSON reader, or NocoDB's HTTP) runs mostly outside the GIL, so it
    takes the second core; one thread fetches, so the source is never used by two at once."""

    def fetch(day: date) -> list[RawRecord | RecordTable]:
        start, end = day_window(day)
        return list(source.fetch(entity, start, end))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{entity}") as pool:
        ahead = pool.submit(fetch, days[0]) if days else None
        for position, day in enumerate(days):
            records = ahead.result()
            ahead = pool.submit(fetch, days[position + 1]) if position + 1 < len(days) else None
            yield day, records


@dataclass
class RecordCounts:
    """Where the records of one origin (an export file, a NocoDB table) went; `balanced` when every
    record read is in exactly one place."""

    read: int = 0
    raw: int = 0
    quarantined: int = 0
    duplicates: int = 0
    other_days: int = 0  # valid records outside the window: the source should not have yielded them

    @property
    def balanced(self) -> bool:
        return self.read == self.raw + self.quarantined + self.duplicates + self.other_days

    def add(self, other: RecordCounts) -> None:
        """Add another window's counts of the same origin (a run covers several days)."""
        for name in ("read", "raw", "quarantined", "duplicates", "other_days"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Batch:
    """A validated slice: the rows to store, the records set aside, and where each record read went."""

    table: pa.Table
    quarantine: pa.Table
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    counts: dict[str, RecordCounts] = field(default_factory=dict)  # by origin, see `origin`
    versions: pa.Table = field(default_factory=lambda: versions_table(pa.array([], TS), pa.array([], pa.string())))
    # of the table's rows, in its order (`versions_table`)
    origins: list[str] = field(default_factory=list)  # of the table's rows, in its order


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (with or without offset), NocoDB's 'YYYY-MM-DD HH:MM:SS', or epoch seconds; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):  # the common case, first
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None
        try:
            parsed = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    if parsed.tzinfo is timezone.utc:
        return parsed
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 has no UTC time
        return None


def parse_times(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`parse_timestamp` over a string column, null where it gives None: values of the plain ISO form
    are cast by Arrow, the others parsed one by one."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    shaped = pc.fill_null(pc.match_substring_regex(values, _PLAIN_TIME), False)
    try:
        moments = pc.if_else(shaped, values, pa.scalar(None, values.type)).cast(TS)
    except pa.ArrowInvalid:  # a plain-looking impossible date (02-30): every value its own way
        shaped = pa.array(np.zeros(len(values), dtype=bool))
        moments = pa.nulls(len(values), TS)
    others = pc.and_(pc.invert(shaped), pc.is_valid(values))
    if not pc.any(others).as_py():
        return moments
    parsed = [parse_timestamp(value) for value in values.filter(others).to_pylist()]
    return pc.replace_with_mask(moments, others, pa.array(parsed, TS))


def in_range(moment: datetime, now: datetime | None = None) -> bool:
    """Whether a timestamp is plausible for a chat record: from 2000 to a day ahead of now."""
    return EARLIEST_TIME <= moment <= (now or datetime.now(timezone.utc)) + MAX_AHEAD


def in_range_column(moments: pa.Array, now: datetime) -> pa.Array:
    """`in_range` over a timestamp column (null where the time is null)."""
    return pc.and_(
        pc.greater_equal(moments, pa.scalar(EARLIEST_TIME, TS)), pc.less_equal(moments, pa.scalar(now + MAX_AHEAD, TS))
    )


def placement_time(value: Any, now: datetime | None = None) -> datetime | None:
    """The time a record is placed by: its own when it parses and is in range; None sends the record
    to the window of its arrival, where validation quarantines it."""
    moment = parse_timestamp(value)
    return moment if moment is not None and in_range(moment, now) else None


_ROW_SUFFIX = re.compile(r"[:/]\d+$")
_DIGITS = "0123456789"


def origin(locator: str) -> str:
    """The file or table a record came from: its locator without the line number or row id."""
    return _ROW_SUFFIX.sub("", locator)


def _as_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    text = str(value).strip()
    return text or None


def _record_json(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, default=str, sort_keys=True)


def _checked_time(rec: Mapping[str, Any], name: str, now: datetime | None) -> tuple[datetime | None, str | None]:
    """A required timestamp field, or the reason it cannot be used."""
    moment = parse_timestamp(rec.get(name))
    if moment is None:
        return None, f"bad {name}: {rec.get(name)!r}"
    if not in_range(moment, now):
        return None, f"{OUT_OF_RANGE}: {name} {rec.get(name)!r}"
    return moment, None


def _validate_conversation(
    rec: Mapping[str, Any], now: datetime | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    conversation_id = _as_id(rec.get("conversation_id"))
    if conversation_id is None:
        return None, "missing conversation_id"
    user_id = _as_id(rec.get("user_id"))
    if user_id is None:
        return None, "missing user_id"
    started_at, reason = _checked_time(rec, "started_at", now)
    if started_at is None:
        return None, reason
    ended_at = None
    if rec.get("ended_at") not in (None, ""):
        ended_at, reason = _checked_time(rec, "ended_at", now)
        if ended_at is None:
            return None, reason
    status = str(rec.get("status") or "open").strip().lower()
    if status not in CONVERSATION_STATUSES:
        return None, f"unknown status: {rec.get('status')!r}"
    channel = str(rec.get("channel") or "unknown").strip().lower() or "unknown"
    return {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "channel": channel,
        "started_at": started_at,
        "ended_at": ended_at,
        "status": status,
    }, None


def _validate_message(rec: Mapping[str, Any], now: datetime | None = None) -> tuple[dict[str, Any] | None, str | None]:
    message_id = _as_id(rec.get("message_id"))
    if message_id is None:
        return None, "missing message_id"
    conversation_id = _as_id(rec.get("conversation_id"))
    if conversation_id is None:
        return None, "missing conversation_id"
    role = str(rec.get("role") or "").strip().lower()
    role = ROLE_ALIASES.get(role, role)
    if role not in MESSAGE_ROLES:
        return None, f"unknown role: {rec.get('role')!r}"
    text = rec.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        return None, f"text is not a string: {type(text).__name__}"
    sent_at, reason = _checked_time(rec, "sent_at", now)
    if sent_at is None:
        return None, reason
    return {
        "message_id": message_id,
        "conversation_id": conversation_id,
        "role": role,
        "text": text,
        "sent_at": sent_at,
    }, None


_VALIDATORS = {"conversations": _validate_conversation, "messages": _validate_message}


def rename_columns(fields: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """Source column names -> our field names (`mapping` is ours -> theirs)."""
    if not mapping:
        return dict(fields)
    out = dict(fields)
    for ours, theirs in mapping.items():
        if theirs in fields:
            out[ours] = fields[theirs]
    return out


# The form almost every record has. The fast path takes such records and leaves the rest, each with
# its own normalisation or reason, to the per-record validation: ids without surrounding space
# (str.strip would change nothing), a role or status as written after normalisation, a lowercase
# channel, and an ISO 8601 UTC time that every supported Python's datetime.fromisoformat reads.
_PLAIN_ID = r"(?s)^[!-~](?:.*[!-~])?$"
_PLAIN_CHANNEL = r"^[a-z0-9_-]+$"
_PLAIN_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3}|\.\d{6})?(?:Z|\+00:00)$"
_PLAIN_NAMES = {
    "role": {role: ROLE_ALIASES.get(role, role) for role in (*MESSAGE_ROLES, *ROLE_ALIASES)},
    "status": {status: status for status in CONVERSATION_STATUSES},
}
_FIELD_KINDS: dict[Entity, dict[str, str]] = {
    "conversations": {
        "conversation_id": "id",
        "user_id": "id",
        "channel": "channel",
        "started_at": "time",
        "ended_at": "optional time",
        "status": "status",
    },
    "messages": {"message_id": "id", "conversation_id": "id", "role": "role", "text": "text", "sent_at": "time"},
}


def _plain_records(
    entity: Entity, records: list[Mapping[str, Any]], now: datetime
) -> tuple[np.ndarray, pa.Table] | None:
    """`_plain_columns` over records as dicts."""
    try:  # str and None only: bytes would pass as text
        columns = {name: pa.array([r.get(name) for r in records]) for name in _FIELD_KINDS[entity]}
    except (pa.ArrowException, UnicodeEncodeError):
        return None
    return _plain_columns(entity, columns, now)


def _plain_columns(
    entity: Entity, columns: Mapping[str, pa.Array | pa.ChunkedArray], now: datetime
) -> tuple[np.ndarray, pa.Table] | None:
    """Validate records as whole Arrow columns: which records are plain (see _PLAIN_ID) and valid,
    and their rows in that order; None when a field holds values of other types (numbers as ids,
    say) or an impossible date, and then every record takes the per-record path."""
    plain = pa.array(np.ones(len(next(iter(columns.values()))), dtype=bool))
    stored = {}
    try:
        for name, kind in _FIELD_KINDS[entity].items():
            values = columns[name]
            if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) and not (
                pa.types.is_null(values.type)
            ):
                return None
            values = values.cast(pa.large_string() if kind == "text" else pa.string())
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            ok, stored[name] = _plain_column(kind, values, now)
            plain = pc.and_(plain, pc.fill_null(ok, False))
    except (pa.ArrowException, UnicodeEncodeError):
        return None
    return plain.to_numpy(zero_copy_only=False), pa.table(stored).filter(plain)


def _plain_column(kind: str, values: pa.Array, now: datetime) -> tuple[pa.Array, pa.Array]:
    """Which values of one field are plain and valid, and the field's values as stored."""
    if kind == "id":
        return pc.match_substring_regex(values, _PLAIN_ID), values
    if kind == "channel":
        return pc.match_substring_regex(values, _PLAIN_CHANNEL), values
    if kind == "text":
        return pa.array(np.ones(len(values), dtype=bool)), pc.fill_null(values, "")
    if kind in _PLAIN_NAMES:
        names = _PLAIN_NAMES[kind]
        known = pa.array(list(names), pa.string())
        return pc.is_in(values, value_set=known), pa.array(list(names.values()), pa.string()).take(
            pc.index_in(values, value_set=known)
        )
    shaped = pc.fill_null(pc.match_substring_regex(values, _PLAIN_TIME), False)
    moments = pc.if_else(shaped, values, pa.scalar(None, pa.string())).cast(TS)
    ok = pc.and_(shaped, pc.fill_null(in_range_column(moments, now), False))
    return (pc.or_(ok, pc.is_null(values)) if kind == "optional time" else ok), moments


def _count_origins(counts: dict[str, RecordCounts], sources: list[str], rows: pa.Table, name: str) -> None:
    """Add the rows of each origin to that origin's count `name`."""
    if not rows.num_rows:
        return
    for index, number in zip(*np.unique(rows.column("_origin").to_numpy(), return_counts=True), strict=True):
        count = counts[sources[index]]
        setattr(count, name, getattr(count, name) + int(number))


@dataclass
class _Segment:
    """Records that reached `normalize` together, one by one or as a `RecordTable`: their plain rows
    (`_plain_columns`), versions and origins, and `records(rows)`: the chosen rows as records with
    their fields under our names, for the per-record validation."""

    size: int
    plain: tuple[np.ndarray, pa.Table] | None
    changed: pa.Array
    place: pa.Array
    origins: np.ndarray
    records: Callable[[list[int]], list[tuple[RawRecord, Mapping[str, Any] | None]]]


def _record_segment(entity: Entity, pending: list[tuple[RawRecord, Mapping[str, Any], int]], now: datetime) -> _Segment:
    return _Segment(
        size=len(pending),
        plain=_plain_records(entity, [fields for _, fields, _ in pending], now),
        changed=pa.array([raw.version.changed for raw, _, _ in pending], TS),
        place=pa.array([raw.version.place for raw, _, _ in pending], pa.string()),
        origins=np.fromiter((index for _, _, index in pending), np.int64, len(pending)),
        records=lambda rows: [pending[i][:2] for i in rows],
    )


def _table_segment(
    entity: Entity, table: RecordTable, origin_index: int, columns: Mapping[str, str], now: datetime
) -> _Segment:
    """A RecordTable's segment; its fields are renamed as `rename_columns` does. A field whose column
    the table lacks, or one a renamed field's own name fills too (the two would be told apart only
    record by record), sends every row to the per-record path."""
    names = {name: columns.get(name, name) for name in FIELDS[entity]}
    available = set(table.fields.column_names)
    ambiguous = any(
        ours != theirs and ours in available and table.fields.column(ours).null_count < table.num_rows
        for ours, theirs in names.items()
    )
    plain = None
    if not ambiguous and set(names.values()) <= available:
        plain = _plain_columns(entity, {ours: table.fields.column(theirs) for ours, theirs in names.items()}, now)

    def records(rows: list[int]) -> list[tuple[RawRecord, Mapping[str, Any] | None]]:
        found = table.records(rows)
        return [(raw, None if raw.fields is None else rename_columns(raw.fields, columns)) for raw in found]

    return _Segment(
        size=table.num_rows,
        plain=plain,
        changed=table.changed,
        place=table.place,
        origins=np.full(table.num_rows, origin_index, dtype=np.int64),
        records=records,
    )


def versions_table(changed: pa.Array, place: pa.Array) -> pa.Table:
    """Rows' versions as the id index keeps them: `changed` null where the record has none (NEVER)."""
    changed = pc.if_else(pc.equal(changed, pa.scalar(NEVER, TS)), pa.scalar(None, TS), changed)
    return pa.table({"changed": changed, "place": place})


def normalize(
    entity: Entity,
    records: Iterable[RawRecord | RecordTable],
    start: datetime,
    end: datetime,
    columns: Mapping[str, str] | None = None,
    redaction: RedactionOptions = DEFAULT_OPTIONS,
    now: datetime | None = None,
    pseudonym_key: str | bytes | None = None,
) -> Batch:
    """Validate, deduplicate by id (the newest `Version` wins, the later read on a tie) and sort; set
    bad records aside with a reason.

    Quarantined records keep all their fields, each redacted. With `pseudonym_key`, conversations'
    user ids are replaced by their keyed hash (`pseudonymize`), in the quarantine too. Valid records
    outside [start, end) belong to another partition: they are left to it and counted as `other_days`.
    """
    validate = _VALIDATORS[entity]
    now = now or datetime.now(timezone.utc)  # one clock for the whole batch
    columns = columns or {}
    id_field = ID_FIELD[entity]
    time_field = TIME_FIELD[entity]
    partition_day = start.astimezone(timezone.utc).date()
    bad: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}
    counts: dict[str, RecordCounts] = {}

    def set_aside(locator: str, reason: str, record: str) -> None:
        """Keep the record with its reason; the reason quotes the value it rejects, so it is redacted too."""
        bad.append(
            {
                "entity": entity,
                "partition_date": partition_day,
                "locator": locator,
                "reason": redact_texts([reason], redaction)[0][0].as_py(),
                "record": record,
            }
        )
        key = reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
        counts[origin(locator)].quarantined += 1

    def unreadable(raw: RawRecord) -> None:
        set_aside(raw.locator, raw.error or "unreadable record", redact_texts([raw.raw], redaction)[0][0].as_py())

    origins: dict[str, int] = {}
    read: list[int] = []  # records read, by origin index

    def origin_index(source: str) -> int:
        index = origins.get(source)
        if index is None:
            index = origins[source] = len(origins)
            counts[source] = RecordCounts()
            read.append(0)
        return index

    segments: list[_Segment] = []
    pending: list[tuple[RawRecord, Mapping[str, Any], int]] = []  # parsed records and their origin's index
    # Where `origin` cuts a locator depends only on the locator without its trailing digits, so
    # the regex runs once per file or table rather than once per record.
    cuts: dict[tuple[str, bool], tuple[int, int] | None] = {}  # where the cut starts, what follows it
    for raw in records:
        if isinstance(raw, RecordTable):
            if pending:
                segments.append(_record_segment(entity, pending, now))
                pending = []
            index = origin_index(raw.origin)
            read[index] += raw.num_rows
            segments.append(_table_segment(entity, raw, index, columns, now))
            continue
        locator = raw.locator
        stem = locator.rstrip(_DIGITS)
        key = (stem, len(stem) < len(locator))
        if key not in cuts:
            found = _ROW_SUFFIX.search(locator)
            cuts[key] = None if found is None else (found.start(), len(locator) - found.end())
        cut = cuts[key]
        index = origin_index(locator if cut is None else locator[: cut[0]] + locator[len(locator) - cut[1] :])
        read[index] += 1
        if raw.fields is None:
            unreadable(raw)
            continue
        fields = rename_columns(raw.fields, columns) if columns else raw.fields
        pending.append((raw, fields, index))
    if pending:
        segments.append(_record_segment(entity, pending, now))
    for source, index in origins.items():
        counts[source].read = read[index]

    # Valid rows of both paths in one table, with the position and origin of their record.
    schema = RAW_CONVERSATIONS if entity == "conversations" else RAW_MESSAGES
    position = [pa.field("_seq", pa.int64()), pa.field("_origin", pa.int64())]
    order = pa.schema([*(schema.field(name) for name in FIELDS[entity]), *position])
    rows: list[dict[str, Any]] = []
    fast: list[pa.Table] = []
    offset = 0
    for segment in segments:
        checked = np.zeros(segment.size, dtype=bool) if segment.plain is None else segment.plain[0]
        slow = np.flatnonzero(~checked).tolist()
        for position_in_segment, (raw, fields) in zip(slow, segment.records(slow), strict=True):
            if fields is None:  # a re-read origin that no longer parses
                unreadable(raw)
                continue
            row, reason = validate(fields, now)
            if row is None:
                kept_fields = dict(raw.fields or {})
                user_column = columns.get("user_id", "user_id")
                user_id = _as_id(kept_fields.get(user_column)) if entity == "conversations" else None
                if pseudonym_key is not None and user_id is not None:
                    kept_fields[user_column] = pseudonymize([user_id], pseudonym_key)[0].as_py()
                set_aside(raw.locator, reason or "invalid", _record_json(redact_record(kept_fields, redaction)))
                continue
            if entity == "messages":  # lone surrogates (a JSON escape) become U+FFFD, as Arrow needs
                row["text"] = without_surrogates([row["text"]])[0]
            row["_seq"], row["_origin"] = offset + position_in_segment, int(segment.origins[position_in_segment])
            rows.append(row)
        if segment.plain is not None:
            seqs = np.flatnonzero(checked)
            plain_rows = segment.plain[1].append_column("_seq", pa.array(seqs + offset))
            fast.append(plain_rows.append_column("_origin", pa.array(segment.origins[seqs])).cast(order))
        offset += segment.size
    valid = pa.concat_tables([pa.Table.from_pylist(rows, schema=order), *fast])
    sources = list(origins)
    times = valid.column(time_field)
    inside = pc.and_(pc.greater_equal(times, pa.scalar(start, TS)), pc.less(times, pa.scalar(end, TS)))
    _count_origins(counts, sources, valid.filter(pc.invert(inside)), "other_days")
    valid = valid.filter(inside)
    # Duplicate ids: the newest version wins, the later read on a tie; each other one counts against
    # its own origin.
    changed = pa.concat_arrays([s.changed for s in segments]) if segments else pa.array([], TS)
    place = pa.concat_arrays([s.place for s in segments]) if segments else pa.array([], pa.string())
    seq = valid.column("_seq")
    valid = valid.append_column("_changed", changed.take(seq)).append_column("_place", place.take(seq))
    valid = valid.sort_by(
        [(id_field, "ascending"), ("_changed", "ascending"), ("_place", "ascending"), ("_seq", "ascending")]
    )
    newest = np.ones(valid.num_rows, dtype=bool)
    if valid.num_rows > 1:
        ids = valid.column(id_field).combine_chunks()
        newest[:-1] = pc.not_equal(ids[:-1], ids[1:]).to_numpy(zero_copy_only=False)
    replaced = valid.filter(pa.array(~newest))
    duplicates = replaced.num_rows
    _count_origins(counts, sources, replaced, "duplicates")
    valid = valid.filter(pa.array(newest))
    _count_origins(counts, sources, valid, "raw")
    valid = valid.sort_by([(time_field, "ascending"), (id_field, "ascending")]).combine_chunks()
    if entity == "messages":
        redacted, redactions = redact_texts(valid.column("text"), redaction)
        valid = valid.set_column(valid.schema.get_field_index("text"), schema.field("text"), redacted)
        valid = valid.append_column(schema.field("redactions"), pa.array(redactions, pa.int32()))
    table = valid.select(schema.names).cast(schema)
    if entity == "conversations" and pseudonym_key is not None:
        index = schema.get_field_index("user_id")
        pseudonyms = pseudonymize(table.column(index), pseudonym_key).cast(schema.field(index).type)
        table = table.set_column(index, schema.field(index), pseudonyms)
    quarantine = pa.Table.from_pylist(sorted(bad, key=lambda b: b["locator"]), schema=QUARANTINE)
    kept_origins = valid.column("_origin").to_numpy()
    return Batch(
        table=table,
        quarantine=quarantine,
        duplicates=duplicates,
        reasons=reasons,
        counts=counts,
        versions=versions_table(valid.column("_changed").combine_chunks(), valid.column("_place").combine_chunks()),
        origins=[sources[i] for i in kept_origins.tolist()],
    )


def arrival_day(value: Any) -> date | None:
    """The UTC day of an arrival timestamp (NocoDB CreatedAt), used to place records without a valid time."""
    parsed = parse_timestamp(value)
    return parsed.date() if parsed else None
