"""The Parquet lake: one file per asset per partition, the same code for a local folder and S3.

Layout: `<root>/<asset>/date=YYYY-MM-DD/part-0.parquet` (unpartitioned assets: `<root>/<asset>/part-0.parquet`).
A partition is replaced as a whole: locally by writing a temporary file and renaming it over the old
one, on S3 by uploading the finished file as one object (an upload that fails leaves the old object);
either way no reader ever sees half a day. A writer keeps its temporary file locked; the next write to
the asset deletes those a killed writer left (nobody holds their lock).

S3 credentials come the usual AWS way (environment, shared files, profile, instance role) through a
boto3 session; any S3 failure becomes one StoreError that names the setting to fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from conv_analytics.config import Config
from conv_analytics.errors import PlatformError
from conv_analytics.io.errors import StoreError
from conv_analytics.io.query import scratch_cursor

if TYPE_CHECKING:
    import fsspec

PART_FILE = "part-0.parquet"
ROW_GROUP_ROWS = 256 * 1024  # large enough for scans, small enough to stream
# How every partition file is encoded. A column whose distinct values pass 64 KiB of dictionary (ids,
# timestamps, free text) falls back to plain pages there instead of at Arrow's 1 MiB: a dictionary of
# values that hardly repeat costs encoding time and bytes (a day of raw_messages: 560 -> 361 KB,
# 12.2 -> 8.0 ms), while labels, languages and roles keep theirs.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "row_group_size": ROW_GROUP_ROWS,
    "write_statistics": True,
    "dictionary_pagesize_limit": 64 * 1024,
}
S3_THREADS = 8  # partitions fetched at once from S3 (latency-bound, not CPU-bound)
TEMPORARY_SUFFIX = ".tmp"
# a temporary file younger than this is left alone even when unlocked: its writer may be between creating
# and locking it (microseconds)
TEMPORARY_GRACE_SECONDS = 2


class MissingPartitionError(PlatformError):
    """An upstream partition that was never materialised."""


@dataclass(frozen=True)
class WriteStats:
    rows: int
    bytes: int
    path: str


@dataclass(frozen=True)
class S3Settings:
    """Where an S3 lake lives and who we are there: shared by pyarrow, s3fs (DuckDB) and boto3."""

    endpoint_url: str  # empty: AWS
    region: str
    access_key: str = dataclasses.field(default="", repr=False)
    secret_key: str = dataclasses.field(default="", repr=False)
    session_token: str = dataclasses.field(default="", repr=False)
    sse: str = ""  # server-side encryption asked for on every write: "", AES256 or aws:kms
    sse_kms_key_id: str = ""

    @classmethod
    def resolve(cls, endpoint_url: str, region: str, profile: str = "") -> S3Settings:
        """Credentials the usual AWS way, through a boto3 session (env vars, ~/.aws, AWS_PROFILE, role)."""
        import boto3

        credentials = boto3.Session(profile_name=profile or None).get_credentials()
        if credentials is None:
            raise StoreError(
                "no AWS credentials found for the S3 lake: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            )
        frozen = credentials.get_frozen_credentials()
        return cls(endpoint_url, region, frozen.access_key, frozen.secret_key, frozen.token or "")

    def filesystem(self) -> pafs.S3FileSystem:
        options: dict[str, object] = {
            "region": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "session_token": self.session_token or None,
            "connect_timeout": 5,
            "request_timeout": 60,
        }
        if self.endpoint_url:
            endpoint = urlparse(self.endpoint_url)
            options["endpoint_override"] = endpoint.netloc or endpoint.path
            options["scheme"] = endpoint.scheme or "https"
        return pafs.S3FileSystem(**options)

    def put(self, path: str, data: pa.Buffer) -> None:
        """Upload one object with the server-side encryption asked for (pyarrow's S3 writes cannot ask)."""
        import boto3
        import botocore.exceptions

        bucket, key = path.split("/", 1)
        encryption = {"ServerSideEncryption": self.sse}
        if self.sse == "aws:kms" and self.sse_kms_key_id:
            encryption["SSEKMSKeyId"] = self.sse_kms_key_id
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url or None,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token or None,
        )
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data.to_pybytes(), **encryption)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if self.sse == "aws:kms" and code not in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket"):
                raise OSError(f"KMS: {exc}") from exc  # a store without the key (or without KMS) fails this way
            raise OSError(str(exc)) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise OSError(str(exc)) from exc

    def fsspec(self) -> fsspec.AbstractFileSystem:
        """The same store as an fsspec file system (what DuckDB reads S3 through here)."""
        import s3fs

        # a fresh instance without listing cache: partitions are replaced in place, and a cached
        # listing would hold the replaced object's ETag (s3fs then raises FileExpired)
        return s3fs.S3FileSystem(
            skip_instance_cache=True,
            use_listings_cache=False,
            key=self.access_key,
            secret=self.secret_key,
            token=self.session_token or None,
            endpoint_url=self.endpoint_url or None,
            client_kwargs={"region_name": self.region},
        )


def open_filesystem(
    root: str, *, endpoint_url: str = "", region: str = "", profile: str = "", s3: S3Settings | None = None
) -> tuple[pafs.FileSystem, str, S3Settings | None]:
    """A pyarrow file system, the path of `root` inside it and, for s3://bucket/prefix, its S3 settings.

    `s3` gives the settings outright; otherwise credentials are looked up the usual AWS way.
    """
    parsed = urlparse(root)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreError(f"lake root {root!r} names no bucket: set {Config.s3_bucket.env}")
        s3 = s3 or S3Settings.resolve(endpoint_url, region, profile)
        return s3.filesystem(), f"{parsed.netloc}{parsed.path}".rstrip("/"), s3
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"lake root {root!r}: only local paths and s3:// URLs are supported")
    path = parsed.path if parsed.scheme == "file" else root
    return pafs.LocalFileSystem(), path.rstrip("/") or "/", None


def explain_s3_error(exc: OSError, bucket: str, endpoint_url: str) -> str:
    """What went wrong with S3, in words that name the setting to fix."""
    text = str(exc)
    where = endpoint_url or "AWS"
    if any(s in text for s in ("NETWORK_CONNECTION", "curlCode", "Could not connect", "timed out")):
        return f"the S3 store at {where} is unreachable: start it or fix {Config.s3_endpoint_url.env}"
    if "KMS" in text:
        return (
            f"the S3 store at {where} could not encrypt with KMS: fix {Config.s3_sse_kms_key_id.env} "
            f"or {Config.s3_sse.env}"
        )
    if "ServerSideEncryption" in text or "NotImplemented" in text:
        return f"the S3 store at {where} refused the server-side encryption asked for: fix {Config.s3_sse.env}"
    if any(s in text for s in ("ACCESS_DENIED", "SignatureDoesNotMatch", "InvalidAccessKeyId", "Forbidden")):
        return (
            f"the S3 store at {where} refused the credentials: fix AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )
    if "NoSuchBucket" in text or (f"Bucket '{bucket}'" in text and "not found" in text):
        return f"bucket {bucket!r} does not exist at {where}: create it or fix {Config.s3_bucket.env}"
    return f"the S3 store at {where} failed"


def _temporaries(folder: str) -> list[str]:
    """The writers' temporary files in a local asset folder and its partition folders."""
    found = []
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                found += _temporaries(entry.path)
            elif entry.name.startswith(".") and entry.name.endswith(TEMPORARY_SUFFIX):
                found.append(entry.path)
    return found


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete the temporary files killed writers left in a local asset folder: those no live writer holds
    locked (and older than a moment); the paths removed."""
    removed = []
    for path in _temporaries(folder):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if time.time() - os.fstat(fd).st_mtime >= TEMPORARY_GRACE_SECONDS:
                os.unlink(path)
                removed.append(path)
        except BlockingIOError:
            pass  # a live writer's file
        except FileNotFoundError:
            pass  # removed by another sweep meanwhile
        finally:
            os.close(fd)
    return removed


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Bring a table to `schema`: missing columns become nulls (older files), extra ones are dropped."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class ParquetLake:
    """Reads and writes whole partitions of assets as Parquet files."""

    def __init__(
        self, filesystem: pafs.FileSystem, root: str, url: str | None = None, s3: S3Settings | None = None
    ) -> None:
        self.fs = filesystem
        self.root = root
        self.url = url or root
        self.s3 = s3
        self.is_local = isinstance(filesystem, pafs.LocalFileSystem)
        self._checked = self.is_local
        self._swept: set[str] = set()
        self._sweep_lock = threading.Lock()

    @classmethod
    def open(cls, root: str, **options: str | S3Settings | None) -> ParquetLake:
        filesystem, path, s3 = open_filesystem(root, **options)  # type: ignore[arg-type]
        return cls(filesystem, path, url=root.rstrip("/"), s3=s3)

    @property
    def bucket(self) -> str:
        return self.root.split("/", 1)[0]

    @contextlib.contextmanager
    def _store(self, doing: str) -> Iterator[None]:
        """Turn a store's failure into one StoreError naming the setting to fix; on S3 check the bucket once."""
        try:
            if not self._checked:
                if self.fs.get_file_info(self.bucket).type == pafs.FileType.NotFound:
                    raise OSError(f"NoSuchBucket: Bucket '{self.bucket}' not found")
                self._checked = True
            yield
        except (FileNotFoundError, StoreError):
            raise
        except OSError as exc:
            if self.is_local:  # a folder that cannot be read or written (permissions, a file in its place)
                fix = f"{Config.home.env} or {Config.lake_url.env}"
                raise StoreError(f"local lake {self.url}: {doing} failed ({exc.strerror or exc}): fix {fix}") from exc
            endpoint = self.s3.endpoint_url if self.s3 else ""
            reason = explain_s3_error(exc, self.bucket, endpoint)
            raise StoreError(f"S3 lake {self.url}: {doing} failed: {reason} ({exc})") from exc

    def reading(self, what: str) -> contextlib.AbstractContextManager[None]:
        """For readers of lake files beyond `read` (a dataset scan): S3 failures as one StoreError."""
        return self._store(f"reading {what}")

    def partition_dir(self, asset: str, key: str | None) -> str:
        return f"{self.root}/{asset}" if key is None else f"{self.root}/{asset}/date={key}"

    def partition_path(self, asset: str, key: str | None) -> str:
        return f"{self.partition_dir(asset, key)}/{PART_FILE}"

    def url_of(self, asset: str, key: str) -> str:
        """The address a person or DuckDB uses for a partition."""
        return f"{self.url}/{asset}/date={key}/{PART_FILE}"

    def write(self, asset: str, key: str | None, table: pa.Table, schema: pa.Schema) -> WriteStats:
        """Replace one partition with `table` (an empty table still marks the partition as done)."""
        self._sweep(asset)
        table = conform(table, schema)
        final = self.partition_path(asset, key)
        if not self.is_local:
            with self._store(f"writing {asset} {key or ''}".rstrip()):
                return self._upload(table, final)
        directory = self.partition_dir(asset, key)
        self.fs.create_dir(directory, recursive=True)
        target = f"{directory}/.{PART_FILE}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
        # the writer holds a lock on its temporary file until it is renamed: a lock nobody holds marks a
        # file left behind by a killed writer (the kernel drops the locks of a process that ends)
        held = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)
            pq.write_table(table, target, filesystem=self.fs, **PARQUET_OPTIONS)
            self.fs.move(target, final)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_file(target)
            raise
        finally:
            os.close(held)
        size = self.fs.get_file_info(final).size or 0
        return WriteStats(rows=table.num_rows, bytes=size, path=final)

    def write_partitions(self, asset: str, slices: dict[str, pa.Table], schema: pa.Schema) -> list[WriteStats]:
        """Replace several partitions (a single-run backfill), in key order of the result.

        The files are independent and pyarrow encodes without the GIL, so they are written in parallel,
        one per core (encoding is the bottleneck; on S3 one file's upload overlaps the next one's
        encoding). Each file is still replaced atomically.
        """
        keys = sorted(slices)
        threads = min(len(keys), os.cpu_count() or 1)
        if threads <= 1:
            return [self.write(asset, key, slices[key], schema) for key in keys]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda key: self.write(asset, key, slices[key], schema), keys))

    def _sweep(self, asset: str) -> None:
        """Before this lake object's first write to an asset, remove what killed writers left in its
        folder: locally, temporary files nobody holds. (An S3 upload is one object that appears only when
        complete; an interrupted multipart upload is invisible and expires by the bucket's lifecycle rule.)"""
        with self._sweep_lock:
            if asset in self._swept:
                return
            self._swept.add(asset)
            if self.is_local:
                remove_stale_temporaries(f"{self.root}/{asset}")

    def _upload(self, table: pa.Table, path: str) -> WriteStats:
        """Encode the whole file first, then send it: the object appears only once it is complete."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **PARQUET_OPTIONS)
        data = sink.getvalue()
        if self.s3 is not None and self.s3.sse:
            self.s3.put(path, data)
        else:
            stream = self.fs.open_output_stream(path)
            stream.write(data)
            stream.close()
        return WriteStats(rows=table.num_rows, bytes=data.size, path=path)

    def exists(self, asset: str, key: str | None) -> bool:
        with self._store(f"looking up {asset}"):
            return self.fs.get_file_info(self.partition_path(asset, key)).type == pafs.FileType.File

    def read(self, asset: str, keys: list[str] | None, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
        """The rows of the given partitions (None: the unpartitioned asset), conformed to `schema`
        (only `columns` of it, when given)."""
        if columns is not None:
            schema = pa.schema([schema.field(name) for name in columns])

        def read_one(key: str | None) -> pa.Table | None:
            path = self.partition_path(asset, key)
            try:
                table = pq.read_table(path, filesystem=self.fs, columns=columns)
            except FileNotFoundError:
                return None
            except pa.ArrowInvalid:  # a file written before one of `columns` existed: that column reads as nulls
                table = pq.read_table(path, filesystem=self.fs)
            return conform(table, schema)

        wanted = keys if keys is not None else [None]
        with self._store(f"reading {asset}"):
            if self.is_local or len(wanted) == 1:
                found = [read_one(key) for key in wanted]
            else:
                with ThreadPoolExecutor(S3_THREADS) as pool:
                    found = list(pool.map(read_one, wanted))
        tables = [t for t in found if t is not None]
        missing = [key for key, t in zip(wanted, found, strict=True) if t is None]
        if missing:
            raise MissingPartitionError(
                f"{asset} has no data for partition(s) {', '.join(str(k) for k in missing)} in {self.url}: "
                f"materialise {asset} for them first"
            )
        if not tables:
            return schema.empty_table()
        return pa.concat_tables(tables)

    def row_counts(self, asset: str, keys: list[str]) -> dict[str, int]:
        """Rows per partition from the Parquet footers (0 for a partition that is absent)."""

        def count(key: str) -> int:
            try:
                return pq.read_metadata(self.partition_path(asset, key), filesystem=self.fs).num_rows
            except FileNotFoundError:
                return 0

        with self._store(f"counting {asset}"):
            if self.is_local:
                return {key: count(key) for key in keys}
            with ThreadPoolExecutor(S3_THREADS) as pool:
                return dict(zip(keys, pool.map(count, keys), strict=True))

    def keys(self, asset: str) -> list[str]:
        """The partition keys of an asset that are present in the lake."""
        # one recursive listing (a single paginated LIST on S3) instead of a lookup per day
        selector = pafs.FileSelector(f"{self.root}/{asset}", allow_not_found=True, recursive=True)
        with self._store(f"listing {asset}"):
            infos = self.fs.get_file_info(selector)
        keys = []
        for info in infos:
            parent = info.path.rsplit("/", 2)[-2] if info.path.count("/") >= 2 else ""
            if info.type == pafs.FileType.File and info.base_name == PART_FILE and parent.startswith("date="):
                keys.append(parent.removeprefix("date="))
        return sorted(keys)

    def assets(self) -> list[str]:
        selector = pafs.FileSelector(self.root, allow_not_found=True)
        with self._store("listing the lake"):
            infos = self.fs.get_file_info(selector)
        # folders starting with "_" hold the lake's own bookkeeping (the id index), not assets
        return sorted(
            i.base_name for i in infos if i.type == pafs.FileType.Directory and not i.base_name.startswith("_")
        )


def json_size(table: pa.Table) -> int:
    """Bytes the same rows take as compact JSON lines: the reference for the storage saving.

    DuckDB renders the rows (vectorised); Python's json.dumps would cost many times the Parquet write.
    """
    if table.num_rows == 0:
        return 0
    with scratch_cursor() as cursor:  # every partition written is measured
        cursor.register("json_rows", table)
        return int(cursor.execute("SELECT sum(strlen(to_json(r)::VARCHAR) + 1) FROM json_rows r").fetchall()[0][0])
