"""Creating the default NocoDB tables and loading public conversation data into them
(`conv_analytics.sources.public` gives the data sets users, channels and timestamps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from conv_analytics.nocodb.client import NocoDBClient
from conv_analytics.sources.base import SourceError
from conv_analytics.sources.public import synthesize

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


@dataclass(frozen=True)
class Tables:
    base_id: str
    conversations: str
    messages: str


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
