"""The files source: NocoDB-shaped JSONL or CSV exports in a folder.

Files are named after their entity (`conversations*.jsonl`, `messages*.csv`, ...). A record belongs to
the UTC day of its own timestamp, whatever file holds it: an export named for one day
(`messages-2024-03-01.jsonl`) may hold records of the days around it (time zones, late rows). Records
without a usable timestamp (missing, unparseable, out of range) are placed on the day the file
arrived: the date in its name, else its modification day; validation then quarantines them.

Finding a day's records means knowing which files hold that day. Each file is read once to learn the
days it holds (remembered by path, size and modification time, in the process and, given
`index_path`, in a JSON file for other processes); after that a day reads only the files that hold it.
Learning a JSON Lines file's days reads its time field alone (Arrow's JSON reader, about half the
time of reading every field); only a file that holds a wanted day is then read whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from conv_analytics.schemas import TS
from conv_analytics.sources.base import (
    CHANGE_FIELDS,
    EARLIEST_TIME,
    FIELDS,
    NEVER,
    TIME_FIELD,
    Entity,
    RawRecord,
    RecordTable,
    Version,
    change_time,
    in_range_column,
    parse_times,
    parse_timestamp,
    placement_time,
)

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_SURROGATES = re.compile(r"[\udc80-\udcff]")
# A line a JSON Lines reader skips (Arrow's would then number the rest wrongly): empty or only blanks.
_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")
_BLANK_START = re.compile(rb"[ \t\r]*(?:\n|\Z)")
_CSV_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
UNTERMINATED_QUOTE = "unterminated quote"
CHANGED_WHILE_READ = "the file changed while it was read"

# "path|size|mtime_ns|time column" -> the UTC days the file's records are placed on.
_DAYS_BY_FILE: dict[str, frozenset[date]] = {}


def _file_day(path: Path) -> date | None:
    match = DATE_IN_NAME.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _arrival(path: Path) -> date:
    """The day a file arrived: the date in its name, else its modification day."""
    return _file_day(path) or datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).date()


def _readable(text: str) -> str:
    """Undecodable bytes shown as U+FFFD, for the quarantine."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _csv_lines(text: str) -> list[str]:
    """CSV lines, each keeping its end, split where the csv module splits (CR LF, LF or a lone CR):
    U+2028 and U+0085 are characters inside a field (str.splitlines would break the record)."""
    return _CSV_LINE.findall(text)


def _json_fields(path: Path, names: Sequence[str]) -> pa.Table | None:
    """The fields `names` (as strings) of every record of a JSON Lines file, by Arrow's JSON reader;
    None when the file is not simply one JSON object a line in valid UTF-8 with those fields as strings."""
    if path.suffix.lower() == ".csv":
        return None
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    if _BLANK_START.match(data) or _BLANK_LINE.search(data) or data[data.rfind(b"\n") + 1 :].isspace():
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    options = pa_json.ParseOptions(
        explicit_schema=pa.schema([(name, pa.string()) for name in dict.fromkeys(names)]),
        unexpected_field_behavior="ignore",
    )
    try:
        fields = pa_json.read_json(pa.BufferReader(data), parse_options=options)
    except pa.ArrowException:
        return None
    if fields.num_rows != data.count(b"\n") + (not data.endswith(b"\n")):
        return None  # two objects on a line: line numbers would not match rows
    return fields.combine_chunks()


class FilesSource:
    """Reads exports from `folder`; `columns` maps our field names to the files' column names.

    `index_path` (optional) keeps the days each file holds in a JSON file, so that runs in other
    processes need not read every file once to find a day's records; `now` is the clock of the
    timestamp range check (tests fix it).
    """

    name = "files"

    def __init__(
        self,
        folder: Path,
        columns: Mapping[str, Mapping[str, str]] | None = None,
        now: datetime | None = None,
        index_path: Path | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.columns = columns or {}
        self.now = now
        self.index_path = None if index_path is None else Path(index_path)

    def files(self, entity: Entity) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p
            for p in self.folder.iterdir()
            if p.is_file() and p.name.startswith(entity) and p.suffix.lower() in SUFFIXES
        )

    def fetch(self, entity: Entity, start: datetime, end: datetime) -> Iterator[RawRecord | RecordTable]:
        """Every record placed on a UTC day of [start, end), from whichever file holds it: a file that
        Arrow's JSON reader takes whole comes as one RecordTable of its records of those days."""
        first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
        time_field = self._time_field(entity)
        self._load_index()
        learnt = False
        for path in self.files(entity):
            stat = path.stat()
            key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{time_field}"
            known = _DAYS_BY_FILE.get(key)
            if known is not None and not any(first_day <= day <= last_day for day in known):
                continue
            days, settled = set(), True
            arrival = _arrival(path)
            if known is None:
                # learning a file's days needs only its time field: a file that holds none of the
                # wanted days is not read whole
                placing = self._days(path, time_field, arrival)
                if placing is not None and not any(first_day <= day <= last_day for day in placing[0]):
                    if placing[1]:
                        _DAYS_BY_FILE[key], learnt = placing[0], True
                    continue
            place = f"{arrival.isoformat()}|{path.name}|"
            whole = self._table(path, entity, arrival, place)
            if whole is not None:
                table, placed, final = whole
                wanted = (placed >= np.datetime64(first_day)) & (placed <= np.datetime64(last_day))
                if wanted.all():
                    yield table
                elif wanted.any():
                    yield table.take(np.flatnonzero(wanted))
                days, settled = set(np.unique(placed).astype(object)), bool(final.all())
            else:
                for record, line, day, final in self._placed(path, time_field, arrival):
                    days.add(day)
                    settled = settled and final
                    # versioned only when wanted: most records of a file read to learn its days are not
                    if first_day <= day <= last_day:
                        yield record if record.fields is None else _versioned(record, place, line)
            if settled and known is None:
                _DAYS_BY_FILE[key] = frozenset(days)
                learnt = True
        if learnt:
            self._save_index()

    def _placed(self, path: Path, time_field: str, arrival: date) -> Iterator[tuple[RawRecord, int, date, bool]]:
        """Every record of a file with its line, the UTC day it belongs to, and whether that day is
        final: a timestamp too far in the future puts its record on the arrival day only until it is
        near."""
        now = self.now or datetime.now(timezone.utc)  # one clock for the file
        for record, line in self._records(path):
            value = None if record.fields is None else record.fields.get(time_field)
            moment = placement_time(value, now)
            if moment is not None:
                yield record, line, moment.date(), True
                continue
            parsed = parse_timestamp(value)
            yield record, line, arrival, parsed is None or parsed < EARLIEST_TIME

    def _table(
        self, path: Path, entity: Entity, arrival: date, place: str
    ) -> tuple[RecordTable, np.ndarray, np.ndarray] | None:
        """A JSON Lines file read whole by Arrow's JSON reader, with the UTC day each record belongs to
        (as `_placed` decides) and whether that day is final; None when the file is not simply one
        JSON object a line in valid UTF-8 with our fields as strings (a blank or broken line, a number
        as an id, a duplicate key): then every record is read on its own, each fault with its reason."""
        mapped = self.columns.get(entity, {})
        fields = _json_fields(path, [*FIELDS[entity], *mapped.values(), *CHANGE_FIELDS])
        if fields is None:
            return None
        placed, final = self._placement(fields.column(self._time_field(entity)), arrival)
        lines = pa.array(np.arange(1, fields.num_rows + 1, dtype=np.int64))
        changed = pc.coalesce(*(parse_times(fields.column(name)) for name in CHANGE_FIELDS), pa.scalar(NEVER, TS))
        padded = pc.utf8_lpad(lines.cast(pa.string()), width=9, padding="0")
        table = RecordTable(
            origin=path.name,
            fields=fields,
            changed=changed,
            place=pc.binary_join_element_wise(place, padded, ""),
            records=lambda rows: self._reread(path, place, rows),
        )
        return table, placed, final

    def _placement(self, times: pa.Array, arrival: date) -> tuple[np.ndarray, np.ndarray]:
        """The UTC day each record of a time column belongs to, and whether that day is final (as
        `_placed` decides for one record)."""
        now = self.now or datetime.now(timezone.utc)
        moments = parse_times(times)
        placeable = pc.fill_null(in_range_column(moments, now), False)
        placed = pc.if_else(placeable, moments.cast(pa.date32()), pa.scalar(arrival, pa.date32()))
        early = pc.fill_null(pc.less(moments, pa.scalar(EARLIEST_TIME, TS)), False)
        final = pc.or_(pc.or_(placeable, pc.is_null(moments)), early)
        return placed.to_numpy(zero_copy_only=False), final.to_numpy(zero_copy_only=False)

    def _days(self, path: Path, time_field: str, arrival: date) -> tuple[frozenset[date], bool] | None:
        """The days a JSON Lines file's records are placed on, and whether they are final, from its time
        field alone; None where Arrow cannot read that field as `_table` would. Where only the other
        fields stop `_table` (a number as an id), the per-record reader places each record by the same
        time field, so on the same days: a line Arrow reads is one orjson or json reads too."""
        fields = _json_fields(path, [time_field])
        if fields is None:
            return None
        placed, final = self._placement(fields.column(time_field), arrival)
        return frozenset(np.unique(placed).astype(object)), bool(final.all())

    def _reread(self, path: Path, place: str, rows: Sequence[int]) -> list[RawRecord]:
        """Rows of a file read whole by `_table`, as the per-record reader gives them."""
        if not rows:
            return []
        data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
        # only the wanted lines are decoded: a newline byte is never part of a UTF-8 sequence, so each
        # line decodes as it would within the whole file
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
        found = []
        for row in rows:
            locator = f"{path.name}:{row + 1}"
            if row > len(ends):  # the file was cut short since it was read
                found.append(RawRecord(locator, None, CHANGED_WHILE_READ))
                continue
            begin = 0 if row == 0 else int(ends[row - 1]) + 1
            end = int(ends[row]) if row < len(ends) else len(data)
            line = data[begin:end].decode("utf-8", "surrogateescape")
            record = _line_record(locator, line.removesuffix("\r"), undecodable=True)
            found.append(record if record.fields is None else _versioned(record, place, row + 1))
        return found

    def _load_index(self) -> None:
        if self.index_path is None or not self.index_path.is_file():
            return
        try:
            stored = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # a damaged index is only a lost shortcut: the files are read again
        for key, days in stored.items():
            _DAYS_BY_FILE.setdefault(key, frozenset(date.fromisoformat(d) for d in days))

    def _save_index(self) -> None:
        """Write the entries of this folder's current files, atomically (a run that writes at the same
        time loses nothing but a shortcut)."""
        if self.index_path is None:
            return
        current = {
            f"{p.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
            for entity in ("conversations", "messages")
            for p in self.files(entity)
            for stat in (p.stat(),)
        }
        entries = {
            key: sorted(d.isoformat() for d in days)
            for key, days in _DAYS_BY_FILE.items()
            if key.rsplit("|", 1)[0] in current
        }
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.index_path.with_name(f"{self.index_path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.index_path)

    def _time_field(self, entity: Entity) -> str:
        return self.columns.get(entity, {}).get(TIME_FIELD[entity], TIME_FIELD[entity])

    def _records(self, path: Path) -> Iterator[tuple[RawRecord, int]]:
        """The records of a file, each with its line number (unversioned: see `fetch`)."""
        # utf-8-sig: Excel and some exporters start the file with a byte order mark.
        data = path.read_bytes()
        try:
            text, undecodable = data.decode("utf-8-sig"), False
        except UnicodeDecodeError:  # the bad bytes become lone surrogates, each line's are found below
            text, undecodable = data.decode("utf-8-sig", "surrogateescape"), True
        if path.suffix.lower() == ".csv":
            yield from self._csv_records(path, text)
            return
        # JSON Lines end at LF (CR LF too) only; U+2028 and U+0085 may stand unescaped inside a string.
        name = path.name
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if line and not line.isspace():
                yield _line_record(f"{name}:{number}", line, undecodable), number

    def _csv_records(self, path: Path, text: str) -> Iterator[tuple[RawRecord, int]]:
        lines = _csv_lines(text)
        header: list[str] | None = None
        for number, row, error in _csv_rows(lines):
            locator = f"{path.name}:{number}"
            if row is None:
                yield RawRecord(locator, None, error, _readable(lines[number - 1].rstrip("\r\n"))), number
                continue
            if not row:
                continue
            if header is None:
                header = row
                continue
            if any(_SURROGATES.search(v) for v in row):
                yield RawRecord(locator, None, "invalid UTF-8 bytes", _readable(",".join(row))), number
                continue
            if len(row) > len(header):
                yield RawRecord(locator, None, "more fields than the header", ",".join(row)), number
                continue
            values = row + [""] * (len(header) - len(row))
            fields = {k: (None if v == "" else v) for k, v in zip(header, values, strict=True)}
            yield RawRecord(locator, fields), number


def _line_record(locator: str, line: str, undecodable: bool) -> RawRecord:
    """One JSON Lines record (unversioned), or the reason it cannot be read."""
    if undecodable and _SURROGATES.search(line):
        return RawRecord(locator, None, "invalid UTF-8 bytes", _readable(line))
    try:
        fields = orjson.loads(line)
    except orjson.JSONDecodeError:
        # what orjson refuses (NaN, integers over 64 bits) the json module may take; its message
        # names the fault
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            return RawRecord(locator, None, f"invalid JSON: {exc.msg}", line)
    if not isinstance(fields, dict):
        return RawRecord(locator, None, "not a JSON object", line)
    return RawRecord(locator, fields)


def _versioned(record: RawRecord, place: str, line: int) -> RawRecord:
    """The record with its version: its change time when the export has one, then the export's date
    and name (`place`) and the line. Of two records with the same id, the one in the later export is
    the newer."""
    return RawRecord(record.locator, record.fields, version=Version(change_time(record.fields), f"{place}{line:09d}"))


def _csv_rows(lines: list[str]) -> Iterator[tuple[int, list[str] | None, str]]:
    """CSV records with the number of their first line, or None and the reason for a line that
    starts no readable record. A record that runs over several lines (a quoted field with line
    breaks) must parse strictly, and the file must not end inside its quotes; otherwise its first
    line holds an unterminated quote, and reading resumes on the next line, so one bad quote costs
    one record rather than the rest of the file."""
    position = 0
    while position < len(lines):
        reader = csv.reader(islice(lines, position, None))
        first = position
        try:
            for row in reader:
                last = position + reader.line_num
                multiline = last - first > 1
                error = _strict_error("".join(lines[first:last])) if multiline or last == len(lines) else None
                if error is not None and (multiline or "unexpected end of data" in error):
                    yield first + 1, None, UNTERMINATED_QUOTE
                    position = first + 1
                    break
                yield first + 1, row, ""
                first = last
            else:
                return
        except csv.Error as exc:  # a field over the csv module's size limit, say
            yield first + 1, None, f"unreadable CSV: {exc}"
            position = first + 1


def _strict_error(text: str) -> str | None:
    """Why the text is not exactly one well-formed CSV record, or None when it is."""
    if '"' not in text:
        return None
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        return str(exc)
    return None if len(rows) == 1 else f"{len(rows)} records"
