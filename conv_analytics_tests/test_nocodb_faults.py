"""Faults between the platform and a real NocoDB, injected by a proxy the test controls.

429 with Retry-After, 500s, a dropped connection and a page slower than the timeout: the source
must deliver every row once, retry exactly once per fault and wait the back-off it must, no more.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from conv_analytics.nocodb.setup import load_jsonl
from conv_analytics.sources.base import SourceError
from conv_analytics_tests.fault_proxy import Fault, FaultProxy
from conv_analytics_tests.nocodb_support import client, new_base, resource, server, shared_data

pytestmark = pytest.mark.integration

DAY = date(2026, 4, 6)
START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
END = START + timedelta(days=2)
BACKOFF = 0.2  # the client's first back-off step in these tests


@pytest.fixture(scope="module")
def base():
    server()
    for title, tables in new_base("it-faults"):
        path = shared_data() / "dailydialog" / "validation.jsonl"
        load_jsonl(client(), tables, path, DAY, 2, limit=120)
        yield title


@pytest.fixture
def proxy():
    url, _ = server()
    with FaultProxy(url) as running:
        yield running


def _source(base: str, proxy: FaultProxy, **settings):
    options = {"page_size": 100, "threads": 4, "timeout_seconds": 1.0, "max_retries": 4}
    source = resource(base, url=proxy.url, **{**options, **settings}).source()
    source.client.backoff = BACKOFF
    source.table("messages")  # resolve the table before faults are queued for record pages
    return source


def _page(source, day: date):
    """The query string that starts the request for one page (offset) of one day's rows."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    where = source.time_filter("messages", start, start + timedelta(days=1))
    return lambda offset: urlencode({"offset": offset, "limit": 100, "where": where})


def _fetch(source) -> tuple[list[str], float]:
    started = time.monotonic()
    locators = [r.locator for r in source.fetch("messages", START, END)]
    return locators, time.monotonic() - started


def test_faults_lose_nothing_and_cost_one_retry_each(base, proxy) -> None:
    clean_source = _source(base, proxy)
    clean, clean_seconds = _fetch(clean_source)
    clean_requests = len(proxy.requests_to("/records"))
    assert len(clean) > 500 and clean_requests >= 6  # several pages per day

    source = _source(base, proxy)
    # each fault hits a different page (so none is retried into a second fault)
    day1, day2 = (_page(source, DAY + timedelta(days=d)) for d in (0, 1))
    proxy.add(Fault("status", day1(100), status=429, headers={"Retry-After": "1"}))
    proxy.add(Fault("status", day1(200), status=500))
    proxy.add(Fault("status", day1(300), status=500))
    proxy.add(Fault("status", day2(100), status=503))
    proxy.add(Fault("drop", day2(200)))
    proxy.add(Fault("slow", day2(300), delay=2.0))  # beyond the 1 s timeout
    before = len(proxy.requests_to("/records"))
    table = source.table("messages").id
    faulty, seconds = _fetch(source)

    assert Counter(faulty) == Counter(clean)  # nothing lost, nothing twice
    assert len(faulty) == len(set(faulty))
    assert len(proxy.requests_to("/records")) - before == clean_requests + 6  # one retry per fault
    assert source.client.stats.retries == 6
    # Retry-After honoured: the retried request came a second later, not sooner, not much later
    seen = proxy.requests_to("/records")[before:]
    refused = next(i for i, s in enumerate(seen) if s.path.startswith(f"/api/v2/tables/{table}/records?{day1(100)}"))
    again = next(s for s in seen[refused + 1 :] if s.path == seen[refused].path)
    assert 1.0 <= again.at - seen[refused].at < 1.5
    # back-off: 1 s for the 429, then 0.2 s steps (doubling only when one request fails twice)
    assert source.client.stats.backoff_seconds == pytest.approx(1.0 + 5 * BACKOFF)
    assert seconds < clean_seconds + source.client.stats.backoff_seconds + 1.0 + 1.5


def test_persistent_429_gives_up_with_a_clear_error(base, proxy) -> None:
    source = _source(base, proxy, max_retries=2)
    proxy.add(Fault("status", "/records", status=429, headers={"Retry-After": "0"}), times=3)
    before = len(proxy.requests_to("/records"))
    with pytest.raises(SourceError, match=r"HTTP 429 after 3 attempts \(NOCODB_MAX_RETRIES=2\)"):
        list(source.fetch("messages", START, START + timedelta(days=1)))
    assert len(proxy.requests_to("/records")) - before >= 3


def test_writes_are_not_repeated_after_a_lost_connection(base, proxy) -> None:
    source = _source(base, proxy)
    table = source.table("messages").id
    rows_before = client().count(table)
    proxy.add(Fault("drop", "/records"))
    row = {"message_id": "fault-w1", "conversation_id": "c", "role": "user", "text": "x"}
    with pytest.raises(SourceError, match="may or may not have happened"):
        source.client.insert(table, [row])
    assert [s.method for s in proxy.requests_to("/records")].count("POST") == 1
    assert client().count(table) == rows_before  # the proxy dropped it before NocoDB saw it
    proxy.add(Fault("status", "/records", status=429, headers={"Retry-After": "0"}))
    assert len(source.client.insert(table, [row])) == 1  # a 429 is safe to repeat
    assert client().count(table) == rows_before + 1
