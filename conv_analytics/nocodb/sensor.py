"""The NocoDB sensor: re-collect exactly the days whose rows were created or edited since last time.

Each tick asks NocoDB for rows whose `CreatedAt` or `UpdatedAt` is after the cursor (NocoDB's own
clock, so the sensor's clock does not matter) and maps every such row to the day it belongs to:
its own time (`started_at` / `sent_at`), else the day it arrived. An edited row may have moved from
another day; the lake is asked where its id (or, for a quarantined record, its NocoDB locator) is
stored now, and that day is re-collected too, so the row leaves it.

Which runs: the daily chain (raw and quarantined tables, enriched_messages, conversation_categories,
daily_rollups) for each changed day D. A message change on D also requests D-1, because
conversation_categories[D-1] reads the messages of D (conversations crossing midnight). Changed days
and their D-1 are merged into contiguous ranges and each range is one single-run backfill run, so
within a run D-1's categories are built after D's messages. Weekly and monthly rollups are left to
their automation conditions.

Cursor: the latest change time seen plus the changes (row Id, UpdatedAt, own time) of that very
second (on SQLite `gt` also matches the boundary second), kept by Dagster. Run keys are the range
and the cursor the tick started from, so a tick evaluated again after a daemon restart requests
nothing twice. Deletes are invisible to polling; the reconciliation check (checks.py) catches them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg

from conv_analytics.config import Config
from conv_analytics.failures import fails_clearly
from conv_analytics.io.query import quote_identifier
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import EntityTables
from conv_analytics.nocodb.client import CREATED_AT, ROW_ID, UPDATED_AT
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.nocodb.source import NocoDBSource, locator
from conv_analytics.partitions import range_tags
from conv_analytics.sources.base import ENTITIES, ID_FIELD, Entity, parse_timestamp


@dataclass
class Cursor:
    """The latest NocoDB change time seen, and the changes made in that second (already handled)."""

    since: datetime | None = None
    at_since: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        since = parse_timestamp(data.get("since"))
        return cls(since=since, at_since={k: list(v) for k, v in data.get("at_since", {}).items()})

    def dump(self) -> str:
        since = self.since.isoformat() if self.since else None
        return json.dumps({"since": since, "at_since": self.at_since}, sort_keys=True)


def _change_key(row: dict[str, Any], time_column: str) -> str:
    """What identifies one change of a row within a second: its Id alone cannot tell an insert from an
    edit made in the same second, but an edit sets `UpdatedAt` and usually moves the row's own time."""
    return f"{row.get(ROW_ID)}|{row.get(UPDATED_AT) or ''}|{row.get(time_column) or ''}"


def _change_time(row: dict[str, Any]) -> datetime | None:
    times = [t for t in (parse_timestamp(row.get(UPDATED_AT)), parse_timestamp(row.get(CREATED_AT))) if t]
    return max(times) if times else None


def _previous_days(
    lake: LakeResource, entity: Entity, tables: EntityTables, ids: list[str], locators: list[str]
) -> set[date]:
    """Days the lake holds these rows in now (raw by our id, quarantine by NocoDB locator)."""
    if not ids and not locators:
        return set()
    days: set[date] = set()
    con = lake.duckdb()
    views = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    queries = [
        (tables.raw, ID_FIELD[entity], ids),
        (tables.quarantined, "locator", locators),
    ]
    for view, column, values in queries:
        if view in views and values:
            found = con.execute(
                f"SELECT DISTINCT CAST(date AS VARCHAR) FROM {quote_identifier(view)} "
                f"WHERE {quote_identifier(column)} IN (SELECT unnest(?))",
                [values],
            ).fetchall()
            days.update(date.fromisoformat(str(r[0])[:10]) for r in found)
    con.close()
    return days


@dataclass
class Plan:
    """What one tick found: the changed days per entity and the cursor to store."""

    days: dict[Entity, set[date]]
    cursor: Cursor
    changed_rows: int


def plan_changes(
    source: NocoDBSource, lake: LakeResource | None, cursor: Cursor, tables: Mapping[Entity, EntityTables]
) -> Plan:
    """The days touched by rows changed since the cursor, and the cursor after them."""
    days: dict[Entity, set[date]] = {e: set() for e in ENTITIES}
    latest = cursor.since
    changed: list[tuple[Entity, dict[str, Any], datetime]] = []
    time_columns = {entity: source.table(entity).time_column for entity in ENTITIES}
    for entity in ENTITIES:
        handled = set(cursor.at_since.get(entity, []))
        for row in source.changes(entity, cursor.since):
            moment = _change_time(row)
            if moment is None or (cursor.since and moment < cursor.since):
                continue
            if cursor.since and moment == cursor.since and _change_key(row, time_columns[entity]) in handled:
                continue
            changed.append((entity, row, moment))
            latest = moment if latest is None or moment > latest else latest
    at_since: dict[str, list[str]] = {}
    for entity, row, moment in changed:
        if moment == latest:
            at_since.setdefault(entity, []).append(_change_key(row, time_columns[entity]))
        placed = source.placement(entity, row)
        if placed is not None:
            days[entity].add(placed.date())
    if latest == cursor.since:  # still the same second: keep what was handled in it before
        for entity, ids in cursor.at_since.items():
            at_since[entity] = sorted(set(ids) | set(at_since.get(entity, [])))
    if lake is not None:
        for entity in ENTITIES:
            edited = [row for e, row, _ in changed if e == entity and row.get(UPDATED_AT)]
            id_column = source.column(entity, ID_FIELD[entity])
            ids = [str(r[id_column]) for r in edited if r.get(id_column) not in (None, "")]
            locators = [locator(source.table(entity).title, r.get(ROW_ID)) for r in edited]
            days[entity] |= _previous_days(lake, entity, tables[entity], ids, locators)
    return Plan(days=days, cursor=Cursor(since=latest, at_since=at_since), changed_rows=len(changed))


def day_ranges(days: dict[Entity, set[date]], first: date, last: date) -> list[tuple[date, date]]:
    """Contiguous [start, end] ranges covering each changed day (and D-1 for message changes)."""
    wanted = set(days.get("conversations", set())) | set(days.get("messages", set()))
    wanted |= {d - timedelta(days=1) for d in days.get("messages", set())}
    ordered = sorted(d for d in wanted if first <= d <= last)
    ranges: list[tuple[date, date]] = []
    for day in ordered:
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


# Runs that read NocoDB carry this tag; deploy/dagster.yaml runs one of them at a time (its rate limit).
NOCODB_RUN_TAGS = {"conv_analytics/source": "nocodb"}


def run_requests(
    ranges: list[tuple[date, date]], cursor_text: str | None, selection: Sequence[dg.AssetKey]
) -> list[dg.RunRequest]:
    """One run of the daily chain per range; its key is the range and the cursor the tick started from."""
    origin = hashlib.sha1((cursor_text or "").encode()).hexdigest()[:12]
    requests = []
    for start, end in ranges:
        key = f"nocodb:{start.isoformat()}...{end.isoformat()}@{origin}"
        if start == end:
            requests.append(
                dg.RunRequest(
                    run_key=key, partition_key=start.isoformat(), tags=NOCODB_RUN_TAGS, asset_selection=list(selection)
                )
            )
        else:
            tags = {**range_tags(start.isoformat(), end.isoformat()), **NOCODB_RUN_TAGS}
            requests.append(dg.RunRequest(run_key=key, tags=tags, asset_selection=list(selection)))
    return requests


def build_nocodb_sensor(
    daily_chain: Sequence[dg.AssetKey],
    tables: Mapping[Entity, EntityTables],
    start_date: date,
    enabled: bool,
    interval_seconds: int = Config.nocodb_poll_seconds.default_value,
) -> dg.SensorDefinition:
    """The sensor over the daily chain's assets, running by default where NocoDB is the source."""

    @dg.sensor(
        name="nocodb_changes",
        description="Re-collects the days whose NocoDB rows were created or edited since the last tick.",
        minimum_interval_seconds=interval_seconds,
        asset_selection=list(daily_chain),
        default_status=dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED,
    )
    @fails_clearly
    def nocodb_changes(
        context: dg.SensorEvaluationContext, nocodb: NocoDBResource, lake: LakeResource
    ) -> dg.SensorResult | dg.SkipReason:
        if not nocodb.enabled:
            return dg.SkipReason(f"{Config.nocodb_url.env} is not set: the files source has nothing to poll")
        cursor = Cursor.parse(context.cursor)
        plan = plan_changes(nocodb.source(), lake, cursor, tables)
        today = datetime.now(timezone.utc).date()
        ranges = day_ranges(plan.days, start_date, today)
        outside = sorted(d for ds in plan.days.values() for d in ds if not start_date <= d <= today)
        if outside:
            context.log.warning(
                f"{len(outside)} changed day(s) lie outside the partitions ({start_date} .. {today}), "
                f"e.g. {outside[0]}: not collected"
            )
        requests = run_requests(ranges, context.cursor, daily_chain)
        if not requests:
            since = plan.cursor.since.isoformat() if plan.cursor.since else "the beginning"
            return dg.SensorResult(skip_reason=f"no NocoDB rows changed after {since}", cursor=plan.cursor.dump())
        context.log.info(
            f"{plan.changed_rows} changed row(s) -> runs for {', '.join(r.run_key or '' for r in requests)}"
        )
        return dg.SensorResult(run_requests=requests, cursor=plan.cursor.dump())

    return nocodb_changes
