"""A busy window is sampled by a hash of each document's id: exactly `max_texts` documents, the lowest
md5s whatever the run, texts in the order the whole window gives them; a quiet window is read whole."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from conv_analytics.assets.topics import ModelSource, intent_source, topic_source, window_texts
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.tables import StoredTable
from conv_analytics.schemas import ENRICHED_MESSAGES, RAW_MESSAGES

DAYS = [date(2026, 10, 5) + timedelta(days=i) for i in range(3)]
PER_DAY = 40  # conversations a day, each with two user messages and an agent reply


def _messages(day: date) -> pa.Table:
    rows = [
        {
            "message_id": f"{day}-c{c:02d}-m{m}",
            "conversation_id": f"{day}-c{c:02d}",
            "role": role,
            "text": f"{role} words {day} {c} {m}",
            "sent_at": datetime(day.year, day.month, day.day, 9, c, m, tzinfo=timezone.utc),
            "redactions": 0,
            # what enrichment adds (the enriched table's required columns)
            "language": "en",
            "token_count": 5,
            "lemmas": "",
            "sentiment": "neutral",
            "sentiment_score": 0.0,
            "is_fallback": False,
        }
        for c in range(PER_DAY)
        for m, role in enumerate(("user", "agent", "user"))
    ]
    return pa.Table.from_pylist(rows)


@pytest.fixture
def lake(tmp_path: Path) -> ParquetLake:
    lake = ParquetLake.open(str(tmp_path / "lake"))
    for day in DAYS:
        table = _messages(day)
        lake.write("raw_messages", day.isoformat(), table, RAW_MESSAGES)
        lake.write("enriched_messages", day.isoformat(), table, ENRICHED_MESSAGES)
    return lake


SOURCES = {
    "intent": (intent_source("raw_messages", StoredTable(RAW_MESSAGES, "sent_at")), 2 * PER_DAY * len(DAYS)),
    "topic": (topic_source("enriched_messages", StoredTable(ENRICHED_MESSAGES, "sent_at")), PER_DAY * len(DAYS)),
}


def _document_of(source: ModelSource, text: str) -> str:
    """The id of the document a text came from (a message's own id, or its conversation's)."""
    role, _, day, c, m = text.split("\n")[0].split(" ")
    conversation = f"{day}-c{int(c):02d}"
    return f"{conversation}-m{m}" if source.document == "message_id" else conversation


@pytest.mark.parametrize("name", SOURCES)
def test_a_window_within_the_cap_is_read_whole(lake: ParquetLake, name: str) -> None:
    source, documents = SOURCES[name]
    assert len(window_texts(lake, source, DAYS, documents)) == documents
    assert window_texts(lake, source, DAYS, documents).equals(window_texts(lake, source, DAYS, 10**6))


@pytest.mark.parametrize("name", SOURCES)
def test_a_busy_window_keeps_the_documents_whose_ids_hash_lowest_in_the_whole_windows_order(
    lake: ParquetLake, name: str
) -> None:
    source, documents = SOURCES[name]
    cap = documents // 3
    whole = window_texts(lake, source, DAYS, documents).to_pylist()
    sampled = window_texts(lake, source, DAYS, cap).to_pylist()
    ids = [_document_of(source, text) for text in whole]
    lowest = set(sorted(ids, key=lambda i: (hashlib.md5(i.encode()).hexdigest(), i))[:cap])
    assert len(sampled) == cap
    assert sampled == [text for text in whole if _document_of(source, text) in lowest]
    assert window_texts(lake, source, DAYS, cap).to_pylist() == sampled  # the same documents every run
