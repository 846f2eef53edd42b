"""Consistency checks of rollup tables: each returns (passed, problems) so assets and tests share them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

import pyarrow as pa

from conv_analytics.analytics.rollups import ADDITIVE_COLUMNS, RATE_COLUMNS
from conv_analytics.dates import period_end

MAX_PROBLEMS = 20  # problems listed in the check's metadata; the count covers all of them


def shares_in_unit_interval(rollups: pa.Table) -> list[str]:
    """Every rate and share lies in [0, 1] (or is null where there is nothing to divide by)."""
    problems = []
    for row in rollups.select(["period_start", "dimension", "value", *RATE_COLUMNS]).to_pylist():
        for column in RATE_COLUMNS:
            share = row[column]
            if share is not None and not 0.0 <= share <= 1.0:
                problems.append(f"{row['period_start']} {row['dimension']}={row['value']}: {column}={share}")
    return problems


def counts_add_up(rollups: pa.Table) -> list[str]:
    """Per period, each dimension's additive counts sum to the `all` row; users split new/returning."""
    totals: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(ADDITIVE_COLUMNS, 0))
    everything: dict[date, dict[str, int]] = {}
    problems = []
    users = ("active_users", "new_users", "returning_users")
    for row in rollups.select(["period_start", "dimension", "value", *ADDITIVE_COLUMNS, *users]).to_pylist():
        where = f"{row['period_start']} {row['dimension']}={row['value']}"
        if row["new_users"] + row["returning_users"] != row["active_users"]:
            problems.append(f"{where}: new_users + returning_users != active_users")
        if row["active_users"] > row["conversations"]:
            problems.append(f"{where}: more active users than conversations")
        if row["user_messages"] + row["assistant_messages"] + row["agent_messages"] > row["messages"]:
            problems.append(f"{where}: user + assistant + agent messages exceed messages")
        if row["dimension"] == "all":
            everything[row["period_start"]] = {c: row[c] for c in ADDITIVE_COLUMNS}
            continue
        summed = totals[(row["period_start"], row["dimension"])]
        for column in ADDITIVE_COLUMNS:
            summed[column] += row[column]
    for (start, dimension), summed in sorted(totals.items()):
        expected = everything.get(start)
        if expected is None:
            problems.append(f"{start}: no `all` row")
            continue
        for column in ADDITIVE_COLUMNS:
            if summed[column] != expected[column]:
                problems.append(f"{start} {dimension}: {column} sums to {summed[column]}, `all` has {expected[column]}")
    return problems


def days_complete(period: str, starts: Sequence[date], rollups: pa.Table, daily: pa.Table | None = None) -> list[str]:
    """Every period has its `all` row and, for weeks and months, a daily rollup for each of its days
    whose additive counts sum to the period's (conversations count on their start day)."""
    alls = {r["period_start"]: r for r in _all_rows(rollups)}
    days = {r["period_start"]: r for r in _all_rows(daily)} if daily is not None else {}
    problems = []
    for start in sorted(starts):
        if start not in alls:
            problems.append(f"{period} {start}: no rollup row")
            continue
        if period == "day":
            continue
        end = period_end(period, start)
        covered = [start + timedelta(days=i) for i in range((end - start).days)]
        missing = [d for d in covered if d not in days]
        if missing:
            problems.append(f"{period} {start}: daily rollups missing for {', '.join(d.isoformat() for d in missing)}")
            continue
        for column in ADDITIVE_COLUMNS:
            summed = sum(days[d][column] for d in covered)
            if summed != alls[start][column]:
                problems.append(f"{period} {start}: {column} is {alls[start][column]}, its days sum to {summed}")
    return problems


def _all_rows(table: pa.Table) -> list[dict]:
    columns = ["period_start", *ADDITIVE_COLUMNS]
    return [r for r in table.select([*columns, "dimension"]).to_pylist() if r["dimension"] == "all"]
