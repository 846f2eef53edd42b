"""The one interface every source (demo, files, NocoDB) offers, and the validation all records pass.

A source yields `RawRecord`s for one entity and one time window; `normalize` turns them into the
asset's Arrow table and a quarantine table of the records it had to set aside, each with its reason.
Records whose own timestamp is missing or unparseable cannot be placed by it, so sources assign them
to the window of when they arrived (NocoDB `CreatedAt`, the date in an export file's name).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Literal, Protocol

import pyarrow as pa

from conv_analytics.schemas import (
    CONVERSATION_STATUSES,
    MESSAGE_ROLES,
    QUARANTINE,
    RAW_CONVERSATIONS,
    RAW_MESSAGES,
)
from conv_analytics.text.redact import redact_texts

Entity = Literal["conversations", "messages"]
ENTITIES: tuple[Entity, ...] = ("conversations", "messages")

# Our field names per entity; users whose tables name them otherwise map them with CONV_ANALYTICS_COLUMNS.
FIELDS: dict[Entity, tuple[str, ...]] = {
    "conversations": ("conversation_id", "user_id", "channel", "started_at", "ended_at", "status"),
    "messages": ("message_id", "conversation_id", "role", "text", "sent_at"),
}
TIME_FIELD: dict[Entity, str] = {"conversations": "started_at", "messages": "sent_at"}
ID_FIELD: dict[Entity, str] = {"conversations": "conversation_id", "messages": "message_id"}
ROLE_ALIASES = {
    "bot": "assistant",
    "ai": "assistant",
    "customer": "user",
    "human": "agent",
    "operator": "agent",
}


class SourceError(RuntimeError):
    """A source that cannot be read at all (bad credentials, missing table): one clear message."""


@dataclass(frozen=True)
class RawRecord:
    """One record as a source found it: parsed fields, or the reason it could not be parsed."""

    locator: str  # where it came from, for the quarantine: "file.jsonl:12", "nocodb:messages/42"
    fields: Mapping[str, Any] | None
    error: str | None = None
    raw: str = ""  # the undecodable text, when fields is None


class Source(Protocol):
    """Yields the records of one entity whose time falls in [start, end)."""

    name: str

    def fetch(self, entity: Entity, start: datetime, end: datetime) -> Iterator[RawRecord]: ...


@dataclass
class Batch:
    """A validated slice: the rows to store and the records set aside."""

    table: pa.Table
    quarantine: pa.Table
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (with or without offset), NocoDB's 'YYYY-MM-DD HH:MM:SS', or epoch seconds; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None
        try:
            parsed = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _as_id(value: Any) -> str | None:
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


def _redacted_record(text_column: str | None, record: str) -> str:
    """Redact a quarantined record: only its text field when it parsed (ids stay readable), else all of it."""
    if text_column is None:
        return redact_texts([record])[0].to_pylist()[0]
    fields = json.loads(record)
    if isinstance(fields.get(text_column), str):
        fields[text_column] = redact_texts([fields[text_column]])[0].to_pylist()[0]
    return _record_json(fields)


def _validate_conversation(rec: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    conversation_id = _as_id(rec.get("conversation_id"))
    if conversation_id is None:
        return None, "missing conversation_id"
    user_id = _as_id(rec.get("user_id"))
    if user_id is None:
        return None, "missing user_id"
    started_at = parse_timestamp(rec.get("started_at"))
    if started_at is None:
        return None, f"bad started_at: {rec.get('started_at')!r}"
    raw_end = rec.get("ended_at")
    ended_at = parse_timestamp(raw_end)
    if raw_end not in (None, "") and ended_at is None:
        return None, f"bad ended_at: {raw_end!r}"
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


def _validate_message(rec: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
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
    sent_at = parse_timestamp(rec.get("sent_at"))
    if sent_at is None:
        return None, f"bad sent_at: {rec.get('sent_at')!r}"
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


def normalize(
    entity: Entity,
    records: Iterable[RawRecord],
    start: datetime,
    end: datetime,
    columns: Mapping[str, str] | None = None,
) -> Batch:
    """Validate, deduplicate by id (the last version wins) and sort; set bad records aside with a reason.

    Valid records outside [start, end) belong to another partition and are left to it.
    """
    validate = _VALIDATORS[entity]
    id_field = ID_FIELD[entity]
    time_field = TIME_FIELD[entity]
    partition_day = start.astimezone(timezone.utc).date()
    kept: dict[str, dict[str, Any]] = {}
    bad: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}
    duplicates = 0

    def set_aside(locator: str, reason: str, record: str, text_column: str | None = None) -> None:
        """Keep the record with its reason; its message text (or, unparsed, all of it) gets redacted."""
        bad.append(
            {
                "entity": entity,
                "partition_date": partition_day,
                "locator": locator,
                "reason": reason,
                "record": record,
                "redact": text_column,
            }
        )
        key = reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1

    for raw in records:
        if raw.fields is None:
            set_aside(raw.locator, raw.error or "unreadable record", raw.raw)
            continue
        fields = rename_columns(raw.fields, columns or {})
        row, reason = validate(fields)
        if row is None:
            text_column = (columns or {}).get("text", "text")
            set_aside(raw.locator, reason or "invalid", _record_json(raw.fields), text_column)
            continue
        if not (start <= row[time_field] < end):
            continue
        if row[id_field] in kept:
            duplicates += 1
        kept[row[id_field]] = row

    rows = sorted(kept.values(), key=lambda r: (r[time_field], r[id_field]))
    schema = RAW_CONVERSATIONS if entity == "conversations" else RAW_MESSAGES
    if entity == "messages":
        redacted, counts = redact_texts([r["text"] for r in rows])
        columns_data = {name: [r[name] for r in rows] for name in FIELDS["messages"]}
        columns_data["text"] = redacted
        columns_data["redactions"] = pa.array(counts, pa.int32())
        table = pa.table(columns_data, schema=schema)
    else:
        table = pa.Table.from_pylist(rows, schema=schema)
    for b in bad:
        b["record"] = _redacted_record(b.pop("redact"), b["record"])
    quarantine = pa.Table.from_pylist(sorted(bad, key=lambda b: b["locator"]), schema=QUARANTINE)
    return Batch(table=table, quarantine=quarantine, duplicates=duplicates, reasons=reasons)


def arrival_day(value: Any) -> date | None:
    """The UTC day of an arrival timestamp (NocoDB CreatedAt), used to place records without a valid time."""
    parsed = parse_timestamp(value)
    return parsed.date() if parsed else None
