"""Creating the default NocoDB tables and loading public conversation data into them.

The JSONL files of ../shared/data (DailyDialog, MultiWOZ) carry text and speakers only; users,
channels, statuses and timestamps are derived from a hash of each conversation id, so a load is
the same every time for the same file and date range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from conv_analytics.nocodb.client import NocoDBClient
from conv_analytics.sources.base import SourceError

CONVERSATION_COLUMNS = (
    ("conversation_id", "SingleLineText"),
    ("user_id", "SingleLineText"),
    ("channel", "SingleLineText"),
    ("started_at", "DateTime"),
    ("ended_at", "DateTime"),
    ("status", "SingleLineText"),
)
MESSAGE_COLUMNS = (
    ("message_id", "SingleLineText"),
    ("conversation_id", "SingleLineText"),
    ("role", "SingleLineText"),
    ("text", "LongText"),
    ("sent_at", "DateTime"),
)
CHANNELS = ("web", "app", "whatsapp", "email", "voice")
# status by hash bucket out of 20: mostly resolved, some escalated, abandoned or still open
STATUSES = ("resolved",) * 14 + ("escalated",) * 2 + ("abandoned",) * 2 + ("open",) * 2
SPEAKER_ROLES = {
    "user": "user",
    "customer": "user",
    "system": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "agent": "agent",
}


@dataclass(frozen=True)
class Tables:
    base_id: str
    conversations: str
    messages: str


def _bucket(text: str, modulo: int) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") % modulo


def nocodb_datetime(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00:00")


def ensure_tables(
    client: NocoDBClient,
    base: str,
    conversations: str = "conversations",
    messages: str = "messages",
) -> Tables:
    """The base (by id or title) and both tables, created where missing; existing ones are kept."""
    found = [b for b in client.bases() if base in (b.get("id"), b.get("title"))]
    base_id = str(found[0]["id"]) if found else str(client.create_base(base)["id"])
    existing = {t["title"]: str(t["id"]) for t in client.tables(base_id)}
    ids = {}
    for title, columns in ((conversations, CONVERSATION_COLUMNS), (messages, MESSAGE_COLUMNS)):
        ids[title] = existing.get(title) or str(client.create_table(base_id, title, columns)["id"])
    return Tables(base_id, ids[conversations], ids[messages])


def synthesize(
    path: Path, start: date, days: int, limit: int | None = None
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(conversation row, message rows) for each conversation of a shared-data JSONL file.

    Conversation i starts on day start + i mod days at a time of day taken from its id's hash;
    replies follow 5 to 95 seconds apart. The first speaker is the user unless speakers are named.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    with path.open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if limit is not None and i >= limit:
                return
            if not line.strip():
                continue
            item = json.loads(line)
            conversation_id = str(item["conversation_id"])
            day = start + timedelta(days=i % days)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(
                seconds=_bucket(conversation_id, 86_000)
            )
            speakers: dict[str, str] = {}
            messages = []
            for message in item.get("messages", []):
                speaker = str(message.get("speaker", ""))
                if speaker not in speakers:
                    speakers[speaker] = SPEAKER_ROLES.get(speaker.lower(), "user" if not speakers else "assistant")
                message_id = f"{conversation_id}-{int(message.get('index', len(messages))):03d}"
                if messages:
                    moment += timedelta(seconds=5 + _bucket(message_id, 90))
                messages.append(
                    {
                        "message_id": message_id,
                        "conversation_id": conversation_id,
                        "role": speakers[speaker],
                        "text": message.get("text", ""),
                        "sent_at": nocodb_datetime(moment),
                    }
                )
            first = messages[0]["sent_at"] if messages else nocodb_datetime(moment)
            conversation = {
                "conversation_id": conversation_id,
                "user_id": f"user-{_bucket('user' + conversation_id, 400):04d}",
                "channel": CHANNELS[_bucket("channel" + conversation_id, len(CHANNELS))],
                "started_at": first,
                "ended_at": messages[-1]["sent_at"] if messages else first,
                "status": STATUSES[_bucket("status" + conversation_id, len(STATUSES))],
            }
            yield conversation, messages


def load_jsonl(
    client: NocoDBClient,
    tables: Tables,
    path: Path,
    start: date,
    days: int,
    limit: int | None = None,
) -> tuple[int, int]:
    """Insert the file's conversations and messages (100 rows a request); (conversations, messages).

    Refuses to load a file whose first conversation is already in the table, so a repeated
    command does not double the data.
    """
    if not path.is_file():
        raise SourceError(f"{path} is not a file")
    conversations: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for conversation, rows in synthesize(path, start, days, limit):
        conversations.append(conversation)
        messages.extend(rows)
    if not conversations:
        return 0, 0
    first = conversations[0]["conversation_id"]
    if client.count(tables.conversations, f"(conversation_id,eq,{first})"):
        raise SourceError(f"conversation {first!r} of {path.name} is already in NocoDB: not loading it twice")
    client.insert(tables.conversations, conversations)
    client.insert(tables.messages, messages)
    return len(conversations), len(messages)
