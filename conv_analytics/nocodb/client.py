"""A thin client for the parts of NocoDB's v2 REST API the platform uses.

One `requests.Session` serves a small thread pool. Pages follow the `pageInfo` the server returns (its
page size, `isLastPage`), never the limit we asked for. Requests are rate limited on the client, and
timeouts, dropped connections, 5xx and 429 answers are retried with exponential back-off, honouring
`Retry-After`. Any failure becomes one SourceError naming the setting to fix.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from conv_analytics.config import Config
from conv_analytics.sources.base import SourceError

log = logging.getLogger(__name__)

# Columns NocoDB adds to every table: the row id, and when the row was created and last edited.
ROW_ID = "Id"
CREATED_AT = "CreatedAt"
UPDATED_AT = "UpdatedAt"
MAX_ROWS_PER_WRITE = 100  # NocoDB's NC_DATA_PAYLOAD_LIMIT for API tokens
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER_SECONDS = 120.0  # NocoDB blocks for about 30 s; longer asks are cut to this


def nocodb_time(moment: datetime) -> str:
    """A UTC instant in the form NocoDB's exactDate filters take."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class RateLimiter:
    """At most `per_second` request starts a second across threads (0 or less: no limit)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass
class ClientStats:
    """What the client did, for logs, tests and the benchmark."""

    requests: int = 0
    retries: int = 0
    backoff_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, requests_: int = 0, retries: int = 0, backoff: float = 0.0) -> None:
        with self.lock:
            self.requests += requests_
            self.retries += retries
            self.backoff_seconds += backoff


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total_rows: int
    page_size: int
    is_last: bool


class NocoDBClient:
    """A thin, retrying, rate-limited client for the parts of the NocoDB API the platform uses."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_seconds: float = Config.nocodb_timeout_seconds.default_value,
        max_retries: int = Config.nocodb_max_retries.default_value,
        requests_per_second: float = Config.nocodb_requests_per_second.default_value,
        pool_size: int = Config.nocodb_threads.default_value,
        backoff_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
    ) -> None:
        if not url:
            raise SourceError(
                f"{Config.nocodb_url.env} is not set: give the NocoDB base URL, e.g. http://127.0.0.1:8080"
            )
        if not token:
            raise SourceError(f"{Config.nocodb_api_token.env} is not set: create an API token in NocoDB (Team & Auth)")
        self.url = url.rstrip("/")
        self.timeout = timeout_seconds
        self.max_retries = max_retries
        self.backoff = backoff_seconds
        self.backoff_max = backoff_max_seconds
        self.limiter = RateLimiter(requests_per_second)
        self.stats = ClientStats()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"xc-token": token, "Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        what: str = "",
    ) -> Any:
        """The decoded JSON answer; SourceError with one clear message when it cannot be had.

        POSTs create rows, so they are retried only when the server surely did nothing (429, or a
        connection that was never made); other methods are retried on every transient failure.
        """
        url = f"{self.url}{path}"
        idempotent = method != "POST"
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.acquire()
            self.stats.add(requests_=1)
            wait_for: float | None = None
            try:
                response = self.session.request(method, url, params=params, json=body, timeout=self.timeout)
            except requests.ConnectionError as exc:
                reason = getattr(exc.args[0], "reason", None) if exc.args else None
                never_connected = isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)
                if not (idempotent or never_connected):
                    raise SourceError(
                        f"NocoDB at {self.url}: connection lost during {method} {path}; "
                        f"the write may or may not have happened ({type(exc).__name__})"
                    ) from None
                last_problem = f"connection failed ({type(exc).__name__})"
            except requests.Timeout:
                if not idempotent:
                    raise SourceError(
                        f"NocoDB at {self.url}: {method} {path} timed out after {self.timeout:g} s "
                        f"({Config.nocodb_timeout_seconds.env}); the write may or may not have happened"
                    ) from None
                last_problem = f"timed out after {self.timeout:g} s ({Config.nocodb_timeout_seconds.env})"
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError:
                        if not idempotent:
                            raise SourceError(
                                f"NocoDB at {self.url}: {method} {path} answered something that is not JSON"
                            ) from None
                        last_problem = "answer was not JSON"
                elif response.status_code in RETRY_STATUSES and (idempotent or response.status_code == 429):
                    last_problem = f"HTTP {response.status_code}"
                    wait_for = retry_after_seconds(response.headers.get("Retry-After"))
                    if wait_for is not None:
                        wait_for = min(wait_for, MAX_RETRY_AFTER_SECONDS)
                else:
                    raise self._error(response, method, path, what)
            if attempt == self.max_retries:
                break
            delay = wait_for if wait_for is not None else min(self.backoff * 2**attempt, self.backoff_max)
            log.warning(
                "NocoDB %s %s: %s; retrying in %.2f s (%d/%d)",
                method,
                path,
                last_problem,
                delay,
                attempt + 1,
                self.max_retries,
            )
            self.stats.add(retries=1, backoff=delay)
            time.sleep(delay)
        raise SourceError(
            f"NocoDB at {self.url} ({Config.nocodb_url.env}) did not answer {method} {path}: {last_problem} "
            f"after {self.max_retries + 1} attempts ({Config.nocodb_max_retries.env}={self.max_retries})"
        )

    def _error(self, response: requests.Response, method: str, path: str, what: str) -> SourceError:
        try:
            detail: Any = response.json()
        except ValueError:
            detail = response.text[:200]
        if isinstance(detail, dict):
            detail = detail.get("msg") or detail.get("message") or detail.get("error") or detail
        status = response.status_code
        if status in (401, 403):
            return SourceError(
                f"NocoDB at {self.url} refused the API token (HTTP {status}): check {Config.nocodb_api_token.env}"
                + (f" and its access to {what}" if what else "")
            )
        subject = what or f"{method} {path}"
        return SourceError(f"NocoDB at {self.url}: {subject} failed with HTTP {status}: {detail}")

    # --- meta API -------------------------------------------------------------------------

    def bases(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v2/meta/bases", what="the list of bases")["list"]

    def tables(self, base_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/meta/bases/{base_id}/tables", what="the base's tables")["list"]

    def table_meta(self, table_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/meta/tables/{table_id}", what=f"table {table_id}")

    def create_base(self, title: str) -> dict[str, Any]:
        return self.request("POST", "/api/v2/meta/bases", body={"title": title}, what=f"base {title!r}")

    def create_table(self, base_id: str, title: str, columns: Sequence[tuple[str, str]]) -> dict[str, Any]:
        body = {
            "table_name": title,
            "title": title,
            "columns": [{"column_name": n, "title": n, "uidt": uidt} for n, uidt in columns],
        }
        return self.request("POST", f"/api/v2/meta/bases/{base_id}/tables", body=body, what=f"table {title!r}")

    # --- data API -------------------------------------------------------------------------

    def page(
        self,
        table_id: str,
        *,
        where: str = "",
        offset: int = 0,
        limit: int = 1000,
        fields: Sequence[str] = (),
        sort: str = ROW_ID,
    ) -> Page:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if where:
            params["where"] = where
        if sort:
            params["sort"] = sort
        if fields:
            params["fields"] = ",".join(fields)
        answer = self.request(
            "GET",
            f"/api/v2/tables/{table_id}/records",
            params=params,
            what=f"records of {table_id}",
        )
        info = answer.get("pageInfo") or {}
        rows = answer.get("list") or []
        return Page(
            rows=rows,
            total_rows=int(info.get("totalRows") or 0),
            page_size=int(info.get("pageSize") or len(rows) or limit),
            is_last=bool(info.get("isLastPage", True)),
        )

    def count(self, table_id: str, where: str = "") -> int:
        """Rows matching `where`, as NocoDB counts them (pageInfo.totalRows)."""
        return self.page(table_id, where=where, limit=1, fields=(ROW_ID,)).total_rows

    def insert(self, table_id: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert in requests of at most 100 rows; the new Ids in order."""
        ids: list[int] = []
        for i in range(0, len(rows), MAX_ROWS_PER_WRITE):
            batch = list(rows[i : i + MAX_ROWS_PER_WRITE])
            answer = self.request(
                "POST",
                f"/api/v2/tables/{table_id}/records",
                body=batch,
                what=f"insert into {table_id}",
            )
            ids += [int(r[ROW_ID]) for r in (answer if isinstance(answer, list) else [answer])]
        return ids

    def update(self, table_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Update rows given as {Id, column: value}, at most 100 a request."""
        for i in range(0, len(rows), MAX_ROWS_PER_WRITE):
            self.request(
                "PATCH",
                f"/api/v2/tables/{table_id}/records",
                body=list(rows[i : i + MAX_ROWS_PER_WRITE]),
                what=f"update of {table_id}",
            )

    def delete(self, table_id: str, ids: Sequence[int]) -> None:
        for i in range(0, len(ids), MAX_ROWS_PER_WRITE):
            self.request(
                "DELETE",
                f"/api/v2/tables/{table_id}/records",
                body=[{ROW_ID: x} for x in ids[i : i + MAX_ROWS_PER_WRITE]],
                what=f"delete from {table_id}",
            )

    def pages(
        self,
        table_id: str,
        wheres: Sequence[str],
        *,
        fields: Sequence[str] = (),
        page_size: int = Config.nocodb_page_size.default_value,
        threads: int = Config.nocodb_threads.default_value,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of every filter, fetched `threads` at a time, in the order they arrive.

        The first page of a filter tells its row count and the page size the server really uses;
        the other offsets are then known and fetched side by side. A page that says it is not the
        last while no further page was planned (rows added meanwhile) is followed up.
        """
        todo: list[tuple[str, int]] = [(w, 0) for w in wheres]
        planned_end: dict[str, int] = {}
        in_flight: dict[Future[Page], tuple[str, int]] = {}
        with ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="nocodb") as pool:

            def submit() -> None:
                while todo and len(in_flight) < 2 * max(threads, 1):
                    where, offset = todo.pop(0)
                    future = pool.submit(
                        self.page,
                        table_id,
                        where=where,
                        offset=offset,
                        limit=page_size,
                        fields=fields,
                    )
                    in_flight[future] = (where, offset)

            submit()
            try:
                while in_flight:
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        where, offset = in_flight.pop(future)
                        page = future.result()
                        step = page.page_size or len(page.rows)
                        if offset == 0 and not page.is_last and step > 0:
                            later = list(range(step, page.total_rows, step))
                            todo.extend((where, o) for o in later)
                            planned_end[where] = later[-1] if later else 0
                        last_planned = offset >= planned_end.get(where, 0)
                        if not page.is_last and page.rows and (last_planned or len(page.rows) < step):
                            reached = offset + len(page.rows)
                            todo.append((where, reached))
                            planned_end[where] = max(planned_end.get(where, 0), reached)
                        yield page.rows
                    submit()
            finally:
                for future in in_flight:
                    future.cancel()
