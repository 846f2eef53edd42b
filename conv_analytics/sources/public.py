"""Public conversation data sets (../shared/data: DailyDialog, MultiWOZ, ...) as source records.

Their JSONL files carry text and speakers only; users, channels, statuses and timestamps are derived
from a hash of each conversation id, so a load is the same every time for the same file and dates.
`write_exports` writes them as the files source reads them; the NocoDB set-up inserts the same rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from conv_analytics.sources.base import SourceError

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


def _bucket(text: str, modulo: int) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") % modulo


def utc_text(moment: datetime) -> str:
    """A UTC time as NocoDB and the exports write it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00:00")


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
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name}:{i + 1}: not JSON ({exc.msg})") from None
            if not isinstance(item, dict) or "conversation_id" not in item:
                raise ValueError(
                    f"{path.name}:{i + 1}: not a dialogue (no conversation_id): the input must be one of "
                    "the shared dialogue sets, such as dailydialog or multiwoz"
                )
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
                        "sent_at": utc_text(moment),
                    }
                )
            first = messages[0]["sent_at"] if messages else utc_text(moment)
            conversation = {
                "conversation_id": conversation_id,
                "user_id": f"user-{_bucket('user' + conversation_id, 400):04d}",
                "channel": CHANNELS[_bucket("channel" + conversation_id, len(CHANNELS))],
                "started_at": first,
                "ended_at": messages[-1]["sent_at"] if messages else first,
                "status": STATUSES[_bucket("status" + conversation_id, len(STATUSES))],
            }
            yield conversation, messages


def write_exports(folder: Path, path: Path, start: date, days: int, limit: int | None = None) -> tuple[int, int]:
    """The file's conversations and messages as dated JSONL exports in `folder` (one file per entity
    and day, named for the data set); (conversations, messages). Writing again replaces those files."""
    if not path.is_file():
        raise SourceError(f"{path} is not a file")
    by_day: dict[tuple[str, str], list[str]] = {}
    counts = {"conversations": 0, "messages": 0}
    for conversation, messages in synthesize(path, start, days, limit):
        for entity, rows in (("conversations", [conversation]), ("messages", messages)):
            for row in rows:
                day = row["started_at" if entity == "conversations" else "sent_at"][:10]
                by_day.setdefault((entity, day), []).append(json.dumps(row, ensure_ascii=False) + "\n")
                counts[entity] += 1
    folder.mkdir(parents=True, exist_ok=True)
    for (entity, day), lines in by_day.items():
        (folder / f"{entity}-{path.stem}-{day}.jsonl").write_text("".join(lines), encoding="utf-8")
    return counts["conversations"], counts["messages"]
