"""A busy window is sampled by a hash of each document's id: exactly `max_texts` documents, the lowest
md5s whatever the run, texts in the order the whole window gives them; a quiet window is read whole."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from conv_analytics.assets.topics import ModelSource, WindowSampler, intent_source, topic_source
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.tables import StoredTable
from conv_analytics.schemas import ENRICHED_MESSAGES, RAW_MESSAGES

DAYS = [date(2026, 10, 5) + timedelta(days=i) for i in range(3)]
PER_DAY = 40  # conversations a day, each with two user messages and an agent reply


def _messages(day: date, conversations: int = PER_DAY) -> pa.Table:
    """The day's conversations; the first one goes on past midnight into the next day, whose table
    then holds its last user message."""
    rows = [
        {
            "message_id": f"{day}-c{c:02d}-m{m}",
            "conversation_id": f"{day}-c{c:02d}",
            "role": role,
            "text": f"{role} words {day} {c} {m}",
            "sent_at": datetime(day.year, day.month, day.day, 9 + c // 60, c % 60, m, tzinfo=timezone.utc),
            "redactions": 0,
            # what enrichment adds (the enriched table's required columns)
            "language": "en",
            "token_count": 5,
            "lemmas": "",
            "sentiment": "neutral",
            "sentiment_score": 0.0,
            "is_fallback": False,
        }
        for c in range(conversations)
        for m, role in enumerate(("user", "agent", "user"))
    ]
    before = day - timedelta(days=1)
    if before in DAYS:  # the last message of the first conversation of the day before
        late = {**rows[0], "message_id": f"{before}-c00-m3", "conversation_id": f"{before}-c00"}
        after_midnight = datetime(day.year, day.month, day.day, 0, 5, tzinfo=timezone.utc)
        rows.append({**late, "text": f"user late {before} 0 3", "sent_at": after_midnight})
    return pa.Table.from_pylist(rows)


def _lake(folder: Path, conversations: tuple[int, ...] = (PER_DAY,) * len(DAYS)) -> ParquetLake:
    """A lake of the DAYS, with these many conversations on each."""
    lake = ParquetLake.open(str(folder / "lake"))
    for day, count in zip(DAYS, conversations, strict=True):
        table = _messages(day, count)
        lake.write("raw_messages", day.isoformat(), table, RAW_MESSAGES)
        lake.write("enriched_messages", day.isoformat(), table, ENRICHED_MESSAGES)
    return lake


@pytest.fixture
def lake(tmp_path: Path) -> ParquetLake:
    return _lake(tmp_path)


SOURCES = {
    "intent": (
        intent_source("raw_messages", StoredTable(RAW_MESSAGES, "sent_at")),
        2 * PER_DAY * len(DAYS) + len(DAYS) - 1,
    ),
    "topic": (topic_source("enriched_messages", StoredTable(ENRICHED_MESSAGES, "sent_at")), PER_DAY * len(DAYS)),
}


def _document_of(source: ModelSource, text: str) -> str:
    """The id of the document a text came from (a message's own id, or its conversation's)."""
    _, _, day, c, m = text.split("\n")[0].split(" ")
    conversation = f"{day}-c{int(c):02d}"
    return f"{conversation}-m{m}" if source is SOURCES["intent"][0] else conversation


def _lowest(source: ModelSource, whole: list[str], cap: int) -> list[str]:
    """The texts of the `cap` documents of `whole` whose (md5, id) is lowest, in the window's order."""
    ids = [_document_of(source, text) for text in whole]
    lowest = set(sorted(set(ids), key=lambda i: (hashlib.md5(i.encode()).hexdigest(), i))[:cap])
    return [text for text in whole if _document_of(source, text) in lowest]


def window_texts(lake: ParquetLake, source: ModelSource, days: list[date], max_texts: int) -> pa.Array:
    """The texts of one window, from a sampler of its own."""
    with WindowSampler(lake, source, max_texts) as sampler:
        return sampler.texts(days)


def test_a_conversation_over_midnight_is_one_text_its_messages_in_order_across_days(lake: ParquetLake) -> None:
    source, _ = SOURCES["topic"]
    texts = window_texts(lake, source, DAYS, 10**6).to_pylist()
    first = DAYS[0]
    assert f"user words {first} 0 0\nuser words {first} 0 2\nuser late {first} 0 3" in texts
    # a window holding only the later day has only that day's part of the conversation
    assert f"user late {first} 0 3" in window_texts(lake, source, DAYS[1:], 10**6).to_pylist()


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
    assert len(sampled) == cap
    assert sampled == _lowest(source, whole, cap)
    assert window_texts(lake, source, DAYS, cap).to_pylist() == sampled  # the same documents every run


@pytest.mark.parametrize("name", SOURCES)
def test_one_sampler_over_overlapping_windows_gives_what_a_fresh_one_gives(lake: ParquetLake, name: str) -> None:
    """The ids a sampler keeps from one window to the next (shared days) change nothing."""
    source, documents = SOURCES[name]
    cap = documents // 4
    windows = [DAYS[:2], DAYS[1:], DAYS, DAYS[2:]]
    with WindowSampler(lake, source, cap) as sampler:
        for days in windows:
            texts = sampler.texts(days)
            assert texts.equals(window_texts(lake, source, days, cap)) and len(texts) == min(cap, documents)
            assert sorted(sampler.days) == [d.isoformat() for d in days]  # only the window's days are kept


@pytest.mark.parametrize("name", SOURCES)
def test_of_a_busy_day_only_twice_its_share_of_the_sample_is_kept(lake: ParquetLake, name: str) -> None:
    source, documents = SOURCES[name]
    cap = documents // 8
    share = -(-2 * cap // len(DAYS))
    whole = window_texts(lake, source, DAYS, documents).to_pylist()
    with WindowSampler(lake, source, cap) as sampler:
        assert sampler.texts(DAYS).to_pylist() == _lowest(source, whole, cap)
        assert all(day.limit is not None and day.documents.num_rows == share for day in sampler.days.values())


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("conversations", [(400, PER_DAY, PER_DAY), (400, 1, 1)])
def test_a_day_whose_left_out_documents_are_needed_is_read_again_whole(
    tmp_path: Path, name: str, conversations: tuple[int, ...]
) -> None:
    """One day ten times busier than the others keeps twice a day's share, too few: its last kept ranks
    below the window's cut (quiet days), or all that is kept is not a sample's worth (near-empty days).
    It is read again whole, and the sample is the one the whole window gives."""
    lake = _lake(tmp_path, conversations)
    source, _ = SOURCES[name]
    cap = 40
    whole = window_texts(lake, source, DAYS, 10**6).to_pylist()
    with WindowSampler(lake, source, cap) as sampler:
        assert sampler.texts(DAYS).to_pylist() == _lowest(source, whole, cap)
        assert sampler.days[DAYS[0].isoformat()].limit is None
        assert sampler.days[DAYS[0].isoformat()].documents.num_rows > 2 * cap
