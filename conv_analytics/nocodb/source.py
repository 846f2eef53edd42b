"""The NocoDB source: the records of one entity whose own time falls in a window, read over the REST API.

A window becomes one `where` filter per UTC day (`exactDate` comparisons on the table's DateTime
column), all fetched side by side by the client; rows are deduplicated by NocoDB's row id (offset
pages may overlap while a table changes).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from conv_analytics.config import Config
from conv_analytics.dates import days_between
from conv_analytics.nocodb.client import CREATED_AT, MAX_ROWS_PER_WRITE, ROW_ID, UPDATED_AT, NocoDBClient, nocodb_time
from conv_analytics.sources.base import (
    FIELDS,
    ID_FIELD,
    TIME_FIELD,
    Entity,
    RawRecord,
    SourceError,
    Version,
    change_time,
    parse_timestamp,
    placement_time,
)

TABLE_SETTING: dict[Entity, str] = {
    "conversations": Config.nocodb_conversations_table.env,
    "messages": Config.nocodb_messages_table.env,
}
# Columns a table must have (after CONV_ANALYTICS_COLUMNS); the others may be absent and are
# then judged row by row by normalize().
REQUIRED: dict[Entity, tuple[str, ...]] = {
    "conversations": ("conversation_id", "user_id", "started_at"),
    "messages": ("message_id", "conversation_id", "sent_at"),
}
LOCATOR_PREFIX = "nocodb:"
DATE_TYPES = {"DateTime", "Date", "CreatedTime", "LastModifiedTime"}


def locator(table_title: str, row_id: Any) -> str:
    """Where a record came from, as quarantine rows and the sensor name it: nocodb:<table>/<Id>."""
    return f"{LOCATOR_PREFIX}{table_title}/{row_id}"


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
        page_size: int = Config.nocodb_page_size.default_value,
        threads: int = Config.nocodb_threads.default_value,
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
                        f"{Config.nocodb_base.env}={self.base!r} is not a base of NocoDB at {self.client.url} "
                        f"(bases this token sees: {names})"
                    )
            else:
                found = bases
                if len(found) != 1:
                    names = ", ".join(repr(b.get("title")) for b in bases) or "none"
                    raise SourceError(
                        f"{Config.nocodb_base.env} is not set and NocoDB at {self.client.url} has {len(found)} "
                        f"bases ({names}): set {Config.nocodb_base.env} to the one holding the tables"
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
                    f"rename them or map our field names to yours with {Config.columns.env}"
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

    def fields(self, entity: Entity) -> list[str]:
        """The columns worth fetching: ours (as the table names them), Id, and UpdatedAt and CreatedAt,
        which order two rows of the same id (`version`) and place a row without a usable time."""
        info = self.table(entity)
        wanted = [self.column(entity, f) for f in FIELDS[entity]] + [ROW_ID, UPDATED_AT, CREATED_AT]
        return [c for c in dict.fromkeys(wanted) if c in info.columns]

    @staticmethod
    def version(row: Mapping[str, Any]) -> Version:
        """The newer of two rows with the same id: the later UpdatedAt (else CreatedAt), then the later Id."""
        row_id = row.get(ROW_ID)
        place = f"{row_id:012d}" if isinstance(row_id, int) else str(row_id)
        return Version(change_time({UPDATED_AT: row.get(UPDATED_AT), CREATED_AT: row.get(CREATED_AT)}), place)

    # --- filters --------------------------------------------------------------------------

    def time_filter(self, entity: Entity, start: datetime, end: datetime) -> str:
        """Rows whose own time is in [start, end) (a DateTime column)."""
        col = self.table(entity).time_column
        return f"({col},ge,exactDate,{nocodb_time(start)})~and({col},lt,exactDate,{nocodb_time(end)})"

    @staticmethod
    def arrival_filter(start: datetime, end: datetime) -> str:
        """Rows that arrived (were created in NocoDB) in [start, end)."""
        return f"({CREATED_AT},ge,exactDate,{nocodb_time(start)})~and({CREATED_AT},lt,exactDate,{nocodb_time(end)})"

    def _day_windows(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        days = days_between(start, end) or [start.astimezone(timezone.utc).date()]
        edges = [max(start, datetime(d.year, d.month, d.day, tzinfo=timezone.utc)) for d in days]
        return list(zip(edges, [*edges[1:], end], strict=True))

    def _unplaced_ids(self, entity: Entity, windows: Sequence[tuple[datetime, datetime]]) -> list[Any]:
        """Ids of rows that arrived in the windows without a usable time of their own: unparseable,
        or out of range (1900-01-01 and 9999-12-31 fall in no day's window).

        No server filter finds them all: on SQLite a DateTime column keeps any text it was sent
        (NocoDB shows it as 'Invalid Date'), so the arrivals are read with two columns and judged here.
        """
        info = self.table(entity)
        ids = []
        for rows in self.client.pages(
            info.id,
            [self.arrival_filter(a, b) for a, b in windows],
            fields=(ROW_ID, info.time_column),
            page_size=self.page_size,
            threads=self.threads,
        ):
            ids += [r[ROW_ID] for r in rows if placement_time(r.get(info.time_column)) is None]
        return sorted(set(ids))

    # --- reading --------------------------------------------------------------------------

    def fetch(self, entity: Entity, start: datetime, end: datetime) -> Iterator[RawRecord]:
        info = self.table(entity)
        if info.time_is_date:
            windows = self._day_windows(start, end)
            unplaced = self._unplaced_ids(entity, windows)
            by_id = [
                f"({ROW_ID},in," + ",".join(map(str, unplaced[i : i + MAX_ROWS_PER_WRITE])) + ")"
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
                self.client.pages(info.id, by_id, fields=self.fields(entity), **options),
            )
            # an unusable time that sorts inside the window as text belongs to its arrival day; a row
            # the server's text comparison returns for a day its own UTC time is not on belongs there
            wanted = set(unplaced)
            column = info.time_column

            def select(row: dict[str, Any]) -> bool:
                if row.get(ROW_ID) in wanted:
                    return True
                moment = placement_time(row.get(column))
                return moment is not None and start <= moment < end

        else:
            pages = iter([self._whole_table(entity)])

            def select(row: dict[str, Any]) -> bool:
                return self._placed_in(entity, row, start, end)

        seen: set[Any] = set()
        for rows in pages:
            for row in rows:
                row_id = row.get(ROW_ID)
                if row_id in seen or not select(row):
                    continue
                seen.add(row_id)
                yield RawRecord(locator=locator(info.title, row_id), fields=row, version=self.version(row))

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
                fields=self.fields(entity),
                page_size=self.page_size,
                threads=self.threads,
            ):
                rows.update((r.get(ROW_ID), r) for r in page)
            self._whole[entity] = list(rows.values())
        return self._whole[entity]

    def _placed_in(self, entity: Entity, row: Mapping[str, Any], start: datetime, end: datetime) -> bool:
        moment = self.placement(entity, row)
        return moment is not None and start <= moment < end

    def placement(self, entity: Entity, row: Mapping[str, Any]) -> datetime | None:
        """The instant that decides a row's partition: its own time when usable, else when it arrived."""
        own = placement_time(row.get(self.table(entity).time_column))
        return own if own is not None else parse_timestamp(row.get(CREATED_AT))

    def changes(self, entity: Entity, since: datetime | None) -> list[dict[str, Any]]:
        """Rows created or edited after `since` (all rows when None), with their change time.

        `UpdatedAt` is empty until a row is edited. On SQLite `gt` also matches the boundary
        second, so callers must expect rows they have seen; rows are unique by Id here.
        """
        info = self.table(entity)
        where = ""
        if since is not None:
            t = nocodb_time(since)
            where = f"({UPDATED_AT},gt,exactDate,{t})~or({CREATED_AT},gt,exactDate,{t})"
        id_column = self.column(entity, ID_FIELD[entity])
        wanted = (ROW_ID, info.time_column, id_column, CREATED_AT, UPDATED_AT)
        fields = [c for c in dict.fromkeys(wanted) if c in info.columns]
        rows: dict[Any, dict[str, Any]] = {}
        for page in self.client.pages(info.id, [where], fields=fields, page_size=self.page_size, threads=self.threads):
            rows.update((r.get(ROW_ID), r) for r in page)
        return list(rows.values())
