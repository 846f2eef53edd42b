"""The NocoDB source: records read from a real NocoDB over its v2 REST API.

One `requests.Session` serves a small thread pool. A window of time becomes one `where` filter per
UTC day (`exactDate` comparisons on the table's DateTime column); every window's pages are fetched
side by side, following the `pageInfo` the server returns (its page size, `isLastPage`), never the
limit we asked for. Requests are rate limited on the client, and timeouts, dropped connections,
5xx and 429 answers are retried with exponential back-off, honouring `Retry-After`. Rows are
deduplicated by NocoDB `Id` (offset pages may overlap while a table changes).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import dagster as dg
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from conv_analytics.config import Config, parse_columns
from conv_analytics.partitions import days_between
from conv_analytics.sources.base import (
    FIELDS,
    TIME_FIELD,
    Entity,
    RawRecord,
    SourceError,
    parse_timestamp,
)

log = logging.getLogger(__name__)

TABLE_SETTING: dict[Entity, str] = {
    "conversations": "NOCODB_CONVERSATIONS_TABLE",
    "messages": "NOCODB_MESSAGES_TABLE",
}
# Columns a table must have (after CONV_ANALYTICS_COLUMNS); the others may be absent and are
# then judged row by row by normalize().
REQUIRED: dict[Entity, tuple[str, ...]] = {
    "conversations": ("conversation_id", "user_id", "started_at"),
    "messages": ("message_id", "conversation_id", "sent_at"),
}
DATE_TYPES = {"DateTime", "Date", "CreatedTime", "LastModifiedTime"}
MAX_ROWS_PER_WRITE = 100  # NocoDB's NC_DATA_PAYLOAD_LIMIT for API tokens
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER_SECONDS = 120.0  # NocoDB blocks for about 30 s; longer asks are cut to this


def nocodb_time(moment: datetime) -> str:
    """A UTC instant in the form NocoDB's exactDate filters take."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _retry_after(value: str | None) -> float | None:
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
        timeout_seconds: float = 30.0,
        max_retries: int = 6,
        requests_per_second: float = 4.0,
        pool_size: int = 4,
        backoff_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
    ) -> None:
        if not url:
            raise SourceError("NOCODB_URL is not set: give the NocoDB base URL, e.g. http://127.0.0.1:8080")
        if not token:
            raise SourceError("NOCODB_API_TOKEN is not set: create an API token in NocoDB (Team & Auth)")
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
                        "(NOCODB_TIMEOUT_SECONDS); the write may or may not have happened"
                    ) from None
                last_problem = f"timed out after {self.timeout:g} s (NOCODB_TIMEOUT_SECONDS)"
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
                    wait_for = _retry_after(response.headers.get("Retry-After"))
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
            f"NocoDB at {self.url} (NOCODB_URL) did not answer {method} {path}: {last_problem} "
            f"after {self.max_retries + 1} attempts (NOCODB_MAX_RETRIES={self.max_retries})"
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
                f"NocoDB at {self.url} refused the API token (HTTP {status}): check NOCODB_API_TOKEN"
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
        sort: str = "Id",
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
        return self.page(table_id, where=where, limit=1, fields=("Id",)).total_rows

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
            ids += [int(r["Id"]) for r in (answer if isinstance(answer, list) else [answer])]
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
                body=[{"Id": x} for x in ids[i : i + MAX_ROWS_PER_WRITE]],
                what=f"delete from {table_id}",
            )

    def pages(
        self,
        table_id: str,
        wheres: Sequence[str],
        *,
        fields: Sequence[str] = (),
        page_size: int = 1000,
        threads: int = 4,
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


@dataclass(frozen=True)
class TableInfo:
    """A resolved table: its id, the title it was asked by, and how its time column can be filtered."""

    id: str
    title: str
    columns: frozenset[str]
    time_column: str
    time_is_date: bool  # a DateTime-like column NocoDB can filter with exactDate


class NocoDBSource:
    """Yields the rows of one entity whose own time falls in [start, end).

    Rows whose time column is empty are fetched for the window of their `CreatedAt`, so that
    normalize() quarantines them in the partition of the day they arrived. A time column that is
    not a DateTime column (text, say) cannot be filtered by the server: such a table is read
    whole once per source and placed by parsing each value (unparseable ones by `CreatedAt`).
    """

    name = "nocodb"

    def __init__(
        self,
        client: NocoDBClient,
        *,
        base: str = "",
        tables: Mapping[Entity, str] | None = None,
        columns: Mapping[str, Mapping[str, str]] | None = None,
        page_size: int = 1000,
        threads: int = 4,
    ) -> None:
        self.client = client
        self.base = base
        self.table_names: dict[Entity, str] = {
            "conversations": "conversations",
            "messages": "messages",
            **(tables or {}),
        }
        self.columns = {k: dict(v) for k, v in (columns or {}).items()}
        self.page_size = page_size
        self.threads = threads
        self._base_id: str | None = None
        self._tables: dict[Entity, TableInfo] = {}
        self._whole: dict[Entity, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # --- resolution -------------------------------------------------------------------------

    def column(self, entity: Entity, ours: str) -> str:
        """The table's name for one of our fields (CONV_ANALYTICS_COLUMNS)."""
        return self.columns.get(entity, {}).get(ours, ours)

    def base_id(self) -> str:
        if self._base_id is None:
            bases = self.client.bases()
            if self.base:
                found = [b for b in bases if self.base in (b.get("id"), b.get("title"))]
                if not found:
                    names = ", ".join(repr(b.get("title")) for b in bases) or "none"
                    raise SourceError(
                        f"NOCODB_BASE={self.base!r} is not a base of NocoDB at {self.client.url} "
                        f"(bases this token sees: {names})"
                    )
            else:
                found = bases
                if len(found) != 1:
                    names = ", ".join(repr(b.get("title")) for b in bases) or "none"
                    raise SourceError(
                        f"NOCODB_BASE is not set and NocoDB at {self.client.url} has {len(found)} "
                        f"bases ({names}): set NOCODB_BASE to the one holding the tables"
                    )
            self._base_id = str(found[0]["id"])
        return self._base_id

    def table(self, entity: Entity) -> TableInfo:
        with self._lock:
            if entity in self._tables:
                return self._tables[entity]
            setting = TABLE_SETTING[entity]
            wanted = self.table_names[entity]
            tables = self.client.tables(self.base_id())
            found = [t for t in tables if wanted in (t.get("id"), t.get("title"), t.get("table_name"))]
            if not found:
                names = ", ".join(repr(t.get("title")) for t in tables) or "none"
                raise SourceError(
                    f"{setting}={wanted!r} is not a table of NocoDB base {self.base or self.base_id()!r} "
                    f"(tables there: {names})"
                )
            meta = self.client.table_meta(found[0]["id"])
            types = {c["title"]: c.get("uidt", "") for c in meta.get("columns", [])}
            missing = [self.column(entity, f) for f in REQUIRED[entity] if self.column(entity, f) not in types]
            if missing:
                raise SourceError(
                    f"NocoDB table {wanted!r} ({setting}) has no column(s) {', '.join(map(repr, missing))}: "
                    "rename them or map our field names to yours with CONV_ANALYTICS_COLUMNS"
                )
            time_column = self.column(entity, TIME_FIELD[entity])
            info = TableInfo(
                id=str(found[0]["id"]),
                title=str(found[0].get("title") or wanted),
                columns=frozenset(types),
                time_column=time_column,
                time_is_date=types[time_column] in DATE_TYPES,
            )
            self._tables[entity] = info
            return info

    def fields(self, entity: Entity, *, arrival: bool = False) -> list[str]:
        """The columns worth fetching: ours (as the table names them) and Id; CreatedAt only
        where it places the row (NocoDB formats every date it sends, which costs it time)."""
        info = self.table(entity)
        wanted = [self.column(entity, f) for f in FIELDS[entity]] + ["Id"]
        wanted += ["CreatedAt"] if arrival else []
        return [c for c in dict.fromkeys(wanted) if c in info.columns]

    # --- filters --------------------------------------------------------------------------

    def time_filter(self, entity: Entity, start: datetime, end: datetime) -> str:
        """Rows whose own time is in [start, end) (a DateTime column)."""
        col = self.table(entity).time_column
        return f"({col},ge,exactDate,{nocodb_time(start)})~and({col},lt,exactDate,{nocodb_time(end)})"

    @staticmethod
    def arrival_filter(start: datetime, end: datetime) -> str:
        """Rows that arrived (were created in NocoDB) in [start, end)."""
        return f"(CreatedAt,ge,exactDate,{nocodb_time(start)})~and(CreatedAt,lt,exactDate,{nocodb_time(end)})"

    def _day_windows(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        days = days_between(start, end) or [start.astimezone(timezone.utc).date()]
        edges = [max(start, datetime(d.year, d.month, d.day, tzinfo=timezone.utc)) for d in days]
        return list(zip(edges, [*edges[1:], end], strict=True))

    def _unplaced_ids(self, entity: Entity, windows: Sequence[tuple[datetime, datetime]]) -> list[Any]:
        """Ids of rows that arrived in the windows without a usable time of their own.

        No server filter finds them all: on SQLite a DateTime column keeps any text it was sent
        (NocoDB shows it as 'Invalid Date'), so the arrivals are read with two columns and judged here.
        """
        info = self.table(entity)
        ids = []
        for rows in self.client.pages(
            info.id,
            [self.arrival_filter(a, b) for a, b in windows],
            fields=("Id", info.time_column),
            page_size=self.page_size,
            threads=self.threads,
        ):
            ids += [r["Id"] for r in rows if parse_timestamp(r.get(info.time_column)) is None]
        return sorted(set(ids))

    # --- reading --------------------------------------------------------------------------

    def fetch(self, entity: Entity, start: datetime, end: datetime) -> Iterator[RawRecord]:
        info = self.table(entity)
        if info.time_is_date:
            windows = self._day_windows(start, end)
            unplaced = self._unplaced_ids(entity, windows)
            by_id = [
                "(Id,in," + ",".join(map(str, unplaced[i : i + MAX_ROWS_PER_WRITE])) + ")"
                for i in range(0, len(unplaced), MAX_ROWS_PER_WRITE)
            ]
            options = {"page_size": self.page_size, "threads": self.threads}
            pages: Iterator[list[dict[str, Any]]] = itertools.chain(
                self.client.pages(
                    info.id,
                    [self.time_filter(entity, a, b) for a, b in windows],
                    fields=self.fields(entity),
                    **options,
                ),
                self.client.pages(info.id, by_id, fields=self.fields(entity, arrival=True), **options),
            )
            # an unparseable time that sorts inside the window as text belongs to its arrival day
            wanted = set(unplaced)
            column = info.time_column
            select: Callable[[dict[str, Any]], bool] = lambda row: (  # noqa: E731
                row.get("Id") in wanted or parse_timestamp(row.get(column)) is not None
            )
        else:
            pages = iter([self._whole_table(entity)])
            select = lambda row: self._placed_in(entity, row, start, end)  # noqa: E731
        seen: set[Any] = set()
        prefix = f"nocodb:{info.title}/"
        for rows in pages:
            for row in rows:
                row_id = row.get("Id")
                if row_id in seen or not select(row):
                    continue
                seen.add(row_id)
                yield RawRecord(locator=f"{prefix}{row_id}", fields=row)

    def count(self, entity: Entity, start: datetime, end: datetime) -> int:
        """NocoDB's own count (pageInfo.totalRows) of the rows fetch() yields for [start, end)."""
        info = self.table(entity)
        if not info.time_is_date:
            return sum(self._placed_in(entity, r, start, end) for r in self._whole_table(entity))
        windows = self._day_windows(start, end)
        with ThreadPoolExecutor(max_workers=max(self.threads, 1)) as pool:
            counted = pool.map(lambda w: self.client.count(info.id, self.time_filter(entity, *w)), windows)
            return sum(counted) + len(self._unplaced_ids(entity, windows))

    def _whole_table(self, entity: Entity) -> list[dict[str, Any]]:
        if entity not in self._whole:
            info = self.table(entity)
            rows: dict[Any, dict[str, Any]] = {}
            for page in self.client.pages(
                info.id,
                [""],
                fields=self.fields(entity, arrival=True),
                page_size=self.page_size,
                threads=self.threads,
            ):
                rows.update((r.get("Id"), r) for r in page)
            self._whole[entity] = list(rows.values())
        return self._whole[entity]

    def _placed_in(self, entity: Entity, row: Mapping[str, Any], start: datetime, end: datetime) -> bool:
        moment = self.placement(entity, row)
        return moment is not None and start <= moment < end

    def placement(self, entity: Entity, row: Mapping[str, Any]) -> datetime | None:
        """The instant that decides a row's partition: its own time, else when it arrived."""
        own = parse_timestamp(row.get(self.table(entity).time_column))
        return own if own is not None else parse_timestamp(row.get("CreatedAt"))

    def changes(self, entity: Entity, since: datetime | None) -> list[dict[str, Any]]:
        """Rows created or edited after `since` (all rows when None), with their change time.

        `UpdatedAt` is empty until a row is edited. On SQLite `gt` also matches the boundary
        second, so callers must expect rows they have seen; rows are unique by Id here.
        """
        info = self.table(entity)
        where = ""
        if since is not None:
            t = nocodb_time(since)
            where = f"(UpdatedAt,gt,exactDate,{t})~or(CreatedAt,gt,exactDate,{t})"
        id_column = self.column(entity, "conversation_id" if entity == "conversations" else "message_id")
        wanted = ("Id", info.time_column, id_column, "CreatedAt", "UpdatedAt")
        fields = [c for c in dict.fromkeys(wanted) if c in info.columns]
        rows: dict[Any, dict[str, Any]] = {}
        for page in self.client.pages(info.id, [where], fields=fields, page_size=self.page_size, threads=self.threads):
            rows.update((r.get("Id"), r) for r in page)
        return list(rows.values())


class NocoDBResource(dg.ConfigurableResource):
    """NocoDB as the source; empty `url` means NocoDB is not used. The token is never logged."""

    url: str = ""
    api_token: str = ""
    base: str = ""
    conversations_table: str = "conversations"
    messages_table: str = "messages"
    columns_json: str = ""
    page_size: int = 1000
    threads: int = 4
    requests_per_second: float = 4.0
    timeout_seconds: float = 30.0
    max_retries: int = 6

    @classmethod
    def from_config(cls, config: Config, *, token_as_env_var: bool = False) -> NocoDBResource:
        """The resource for a configuration. For Definitions, a token that came from the
        environment stays a dg.EnvVar (Dagster then shows the variable's name, never its value);
        outside Dagster runs the plain value is needed."""
        token: Any = config.nocodb_api_token
        if token_as_env_var and token and os.environ.get("NOCODB_API_TOKEN", "").strip() == token:
            token = dg.EnvVar("NOCODB_API_TOKEN")
        return cls(
            url=config.nocodb_url,
            api_token=token,
            base=config.nocodb_base,
            conversations_table=config.nocodb_conversations_table,
            messages_table=config.nocodb_messages_table,
            columns_json=json.dumps(config.columns) if config.columns else "",
            page_size=config.nocodb_page_size,
            threads=config.nocodb_threads,
            requests_per_second=config.nocodb_requests_per_second,
            timeout_seconds=config.nocodb_timeout_seconds,
            max_retries=config.nocodb_max_retries,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())

    def client(self) -> NocoDBClient:
        if self.page_size < 1 or self.threads < 1:
            raise SourceError("NOCODB_PAGE_SIZE and NOCODB_THREADS must be at least 1")
        return NocoDBClient(
            self.url,
            self.api_token,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            requests_per_second=self.requests_per_second,
            pool_size=self.threads,
        )

    def source(self, columns: Mapping[str, Mapping[str, str]] | None = None) -> NocoDBSource:
        """A source over the configured tables; `columns` overrides the resource's own mapping."""
        return NocoDBSource(
            self.client(),
            base=self.base,
            tables={"conversations": self.conversations_table, "messages": self.messages_table},
            columns=columns if columns is not None else parse_columns(self.columns_json),
            page_size=self.page_size,
            threads=self.threads,
        )
