"""The NocoDB pieces that need no server: rate limit, Retry-After, cursor, day ranges, run keys."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace

import pytest

from conv_analytics.nocodb.client import NocoDBClient, RateLimiter, nocodb_time, retry_after_seconds
from conv_analytics.nocodb.sensor import Cursor, day_ranges, plan_changes, run_requests
from conv_analytics.partitions import range_tags
from conv_analytics.sources.base import SourceError
from conv_analytics.sources.public import synthesize
from conv_analytics_tests.platform_support import asset_graph


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(20)
    started = time.monotonic()
    for _ in range(6):
        limiter.acquire()
    elapsed = time.monotonic() - started
    assert 0.24 <= elapsed < 0.5  # 5 gaps of 50 ms


def test_rate_limiter_off() -> None:
    limiter = RateLimiter(0)
    started = time.monotonic()
    for _ in range(1000):
        limiter.acquire()
    assert time.monotonic() - started < 0.1


def test_retry_after_seconds_and_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = datetime.now(timezone.utc) + timedelta(seconds=10)
    assert 8 <= (retry_after_seconds(format_datetime(later, usegmt=True)) or 0) <= 10


def test_nocodb_time_is_utc() -> None:
    moment = datetime(2026, 3, 2, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert nocodb_time(moment) == "2026-03-01 23:30:00"


def test_client_names_missing_settings() -> None:
    with pytest.raises(SourceError, match="NOCODB_URL"):
        NocoDBClient("", "token")
    with pytest.raises(SourceError, match="NOCODB_API_TOKEN"):
        NocoDBClient("http://127.0.0.1:1", "")


def test_unreachable_server_is_one_clear_error() -> None:
    client = NocoDBClient("http://127.0.0.1:9", "t", max_retries=1, backoff_seconds=0.01)
    with pytest.raises(SourceError, match=r"NOCODB_URL.*2 attempts"):
        client.bases()


def test_cursor_round_trip() -> None:
    cursor = Cursor(datetime(2026, 3, 2, 10, 0, 5, tzinfo=timezone.utc), {"messages": ["4", "7"]})
    again = Cursor.parse(cursor.dump())
    assert again == cursor
    assert Cursor.parse(None) == Cursor()


def test_day_ranges_add_previous_day_for_messages_and_merge() -> None:
    days = {"conversations": {date(2026, 3, 10)}, "messages": {date(2026, 3, 5), date(2026, 3, 12)}}
    ranges = day_ranges(days, date(2026, 1, 1), date(2026, 12, 31))
    assert ranges == [
        (date(2026, 3, 4), date(2026, 3, 5)),
        (date(2026, 3, 10), date(2026, 3, 12)),
    ]


def test_day_ranges_drop_days_outside_partitions() -> None:
    days = {"conversations": {date(2023, 5, 1), date(2030, 1, 1)}, "messages": set()}
    assert day_ranges(days, date(2024, 1, 1), date(2026, 12, 31)) == []


def test_run_keys_depend_on_range_and_starting_cursor() -> None:
    ranges = [(date(2026, 3, 4), date(2026, 3, 5)), (date(2026, 3, 10), date(2026, 3, 10))]
    chain = asset_graph().daily_chain
    first = run_requests(ranges, '{"since": null}', chain)
    again = run_requests(ranges, '{"since": null}', chain)
    later = run_requests(ranges, '{"since": "2026-03-05T00:00:00+00:00"}', chain)
    assert [r.run_key for r in first] == [r.run_key for r in again]
    assert not {r.run_key for r in first} & {r.run_key for r in later}
    assert range_tags("2026-03-04", "2026-03-05").items() <= first[0].tags.items()
    assert first[1].partition_key == "2026-03-10"


def test_synthesize_is_deterministic(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"conversation_id": "c1", "messages": [{"index": 0, "speaker": "A", "text": "hi"},'
        ' {"index": 1, "speaker": "B", "text": "hello"}]}\n'
        '{"conversation_id": "c2", "messages": [{"index": 0, "speaker": "user", "text": "x"}]}\n'
    )
    first = list(synthesize(path, date(2026, 3, 2), 2))
    assert first == list(synthesize(path, date(2026, 3, 2), 2))
    (c1, m1), (c2, _) = first
    assert [m["role"] for m in m1] == ["user", "assistant"]
    assert c1["started_at"].startswith("2026-03-02") and c2["started_at"].startswith("2026-03-03")
    assert c1["ended_at"] == m1[-1]["sent_at"] > m1[0]["sent_at"]


class _SecondResolutionSource:
    """The parts of NocoDBSource the sensor's planning uses, with NocoDB's boundary behaviour: change
    times have whole seconds and `gt` on SQLite also returns the rows of the cursor's own second."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def table(self, entity: str) -> SimpleNamespace:
        return SimpleNamespace(time_column="sent_at", title=entity)

    def column(self, entity: str, name: str) -> str:
        return name

    def changes(self, entity: str, since: datetime | None) -> list[dict]:
        if entity != "messages":
            return []
        return [r for r in self.rows if since is None or max(filter(None, (r["CreatedAt"], r["UpdatedAt"]))) >= since]

    def placement(self, entity: str, row: dict) -> datetime:
        return datetime.fromisoformat(row["sent_at"])


def test_an_edit_in_the_same_second_as_the_insert_is_not_missed() -> None:
    second = datetime(2026, 3, 10, 9, 0, 0, tzinfo=timezone.utc)
    row = {"Id": 2, "message_id": "m2", "sent_at": "2026-03-10T09:00:00+00:00", "CreatedAt": second, "UpdatedAt": None}
    source = _SecondResolutionSource([row])
    tables = asset_graph().entities
    first = plan_changes(source, None, Cursor(), tables)
    assert first.days["messages"] == {date(2026, 3, 10)}
    again = plan_changes(source, None, first.cursor, tables)
    assert again.days["messages"] == set(), "a change already handled is not requested twice"
    row.update(sent_at="2026-03-15T08:00:00+00:00", UpdatedAt=second)  # edited within the same second
    edited = plan_changes(source, None, again.cursor, tables)
    assert edited.days["messages"] == {date(2026, 3, 15)}


def test_a_file_that_is_not_dialogues_is_refused_with_its_line(tmp_path) -> None:
    path = tmp_path / "sentiment.jsonl"
    path.write_text('{"text": "good", "label": "positive"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"sentiment.jsonl:1: not a dialogue \(no conversation_id\)"):
        list(synthesize(path, date(2026, 3, 2), 2))
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sentiment.jsonl:1: not JSON"):
        list(synthesize(path, date(2026, 3, 2), 2))
