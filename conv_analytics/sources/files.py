"""The files source: NocoDB-shaped JSONL or CSV exports in a folder.

Files are named after their entity (`conversations*.jsonl`, `messages*.csv`, ...). A file whose name
carries a date (`messages-2024-03-01.jsonl`) holds that day's records, so other days skip it; records
without a usable timestamp are placed on that day (else on the file's modification day).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from conv_analytics.sources.base import TIME_FIELD, Entity, RawRecord, parse_timestamp

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_SURROGATES = re.compile(r"[\udc80-\udcff]")


def _file_day(path: Path) -> date | None:
    match = DATE_IN_NAME.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _readable(text: str) -> str:
    """Undecodable bytes shown as U+FFFD, for the quarantine."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class FilesSource:
    """Reads exports from `folder`; `columns` maps our field names to the files' column names."""

    name = "files"

    def __init__(self, folder: Path, columns: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.folder = Path(folder)
        self.columns = columns or {}

    def files(self, entity: Entity) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p
            for p in self.folder.iterdir()
            if p.is_file() and p.name.startswith(entity) and p.suffix.lower() in SUFFIXES
        )

    def fetch(self, entity: Entity, start: datetime, end: datetime) -> Iterator[RawRecord]:
        time_field = self.columns.get(entity, {}).get(TIME_FIELD[entity], TIME_FIELD[entity])
        first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
        for path in self.files(entity):
            named_day = _file_day(path)
            if named_day is not None and not first_day <= named_day <= last_day:
                continue
            arrival = named_day or datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).date()
            arrived_here = first_day <= arrival <= last_day
            for record in self._records(path):
                if record.fields is None:
                    if arrived_here:
                        yield record
                    continue
                moment = parse_timestamp(record.fields.get(time_field))
                if (moment is None and arrived_here) or (moment is not None and start <= moment < end):
                    yield record

    def _records(self, path: Path) -> Iterator[RawRecord]:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        if path.suffix.lower() == ".csv":
            yield from self._csv_records(path, text)
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            locator = f"{path.name}:{number}"
            if _SURROGATES.search(line):
                yield RawRecord(locator, None, "invalid UTF-8 bytes", _readable(line))
                continue
            try:
                fields = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRecord(locator, None, f"invalid JSON: {exc.msg}", line)
                continue
            if not isinstance(fields, dict):
                yield RawRecord(locator, None, "not a JSON object", line)
                continue
            yield RawRecord(locator, fields)

    def _csv_records(self, path: Path, text: str) -> Iterator[RawRecord]:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            locator = f"{path.name}:{reader.line_num}"
            values = [v for v in row.values() if isinstance(v, str)]
            if any(_SURROGATES.search(v) for v in values):
                yield RawRecord(locator, None, "invalid UTF-8 bytes", _readable(",".join(values)))
                continue
            if None in row:
                yield RawRecord(locator, None, "more fields than the header", ",".join(values))
                continue
            yield RawRecord(locator, {k: (None if v == "" else v) for k, v in row.items()})
