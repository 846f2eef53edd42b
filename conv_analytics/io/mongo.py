"""MongoDB: the operational copy of conversations, messages and rollups.

The lake stays the primary read path; MongoDB serves lookups by conversation, user, day and topic.
Written the dagster-duckdb way: a small client (MongoStore) that deletes and writes one partition
slice, plus the conversion between Arrow tables and documents. Each document's `_id` is its natural
key, so a duplicate cannot exist. A partition is replaced by delete-then-insert of its time window in
one transaction where the server has them (replica sets, mongos), else by upserts by natural key
followed by deleting what the new slice no longer holds. Times are stored to the millisecond (BSON).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import dagster as dg
import pyarrow as pa
import pymongo
import pymongo.errors
from pymongo.uri_parser import parse_uri

from conv_analytics.config import Config
from conv_analytics.io.errors import StoreError
from conv_analytics.io.lake import ParquetLake, conform
from conv_analytics.io.tables import MongoCollection, StoredTable
from conv_analytics.resources import setting_field

T = TypeVar("T")
BATCH = 5_000  # documents per insert/upsert round trip
TRANSACTION_ATTEMPTS = 3  # a transaction that hits a transient error is retried this often


def to_documents(table: pa.Table, collection: MongoCollection) -> list[dict[str, Any]]:
    """Arrow rows as BSON-ready documents: dates become UTC midnights, `_id` is the natural key."""
    for i, column in enumerate(table.columns):
        if pa.types.is_date(column.type):  # BSON has no date type
            table = table.set_column(i, table.field(i).name, column.cast(pa.timestamp("ms", tz="UTC")))
    documents = table.to_pylist()
    if len(collection.key) == 1:
        (name,) = collection.key
        for document in documents:
            document["_id"] = document[name]
    else:
        for document in documents:
            document["_id"] = "|".join(_key_part(document[name]) for name in collection.key)
    return documents


def _key_part(value: object) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)


def from_documents(documents: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Documents read back as a table of `schema` (missing fields become nulls)."""
    dates = [f.name for f in schema if pa.types.is_date(f.type)]
    for document in documents:
        document.pop("_id", None)
        for name in dates:
            if isinstance(document.get(name), datetime):
                document[name] = document[name].date()
    if not documents:
        return schema.empty_table()
    names = [f.name for f in schema]
    loose = pa.Table.from_pylist(documents, schema=pa.schema([f.with_nullable(True) for f in schema]))
    return conform(loose.select(names), schema)


def describe_uri(uri: str) -> str:
    """The servers of a connection string, without the password."""
    try:
        hosts = parse_uri(uri, validate=False)["nodelist"]
    except (pymongo.errors.InvalidURI, ValueError):
        return f"<an invalid {Config.mongodb_uri.env}>"
    return ",".join(f"{host}:{port}" for host, port in hosts)


@dataclass(frozen=True)
class MongoLogin:
    """Credentials and TLS options kept out of the URI (each overrides the URI's own when set)."""

    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    auth_source: str = ""
    tls: bool = False
    tls_ca_file: str = ""
    tls_allow_invalid: bool = False

    def client_options(self) -> dict[str, Any]:
        """Keyword options of MongoClient; TLS is only ever switched on here, never off."""
        options: dict[str, Any] = {}
        if self.user:
            options["username"] = self.user
        if self.password:
            options["password"] = self.password
        if self.auth_source:
            options["authSource"] = self.auth_source
        if self.tls or self.tls_ca_file or self.tls_allow_invalid:
            options["tls"] = True
        if self.tls_ca_file:
            options["tlsCAFile"] = self.tls_ca_file
        if self.tls_allow_invalid:
            options["tlsAllowInvalidCertificates"] = True
            options["tlsAllowInvalidHostnames"] = True
        return options

    @property
    def credentials_named(self) -> str:
        """The settings that hold the credentials in use, for messages."""
        if self.user or self.password:
            return f"{Config.mongodb_user.env} / {Config.mongodb_password.env}"
        return Config.mongodb_uri.env


class MongoStore:
    """A small client over one database: indexes, partition replacement and reads by time window."""

    def __init__(self, uri: str, database: str, timeout_ms: int = 10_000, login: MongoLogin | None = None) -> None:
        self.where = describe_uri(uri)
        self.login = login or MongoLogin()
        try:
            self.client: pymongo.MongoClient = pymongo.MongoClient(
                uri,
                tz_aware=True,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                appname="conv-analytics",
                **self.login.client_options(),
            )
        except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI, ValueError) as exc:
            raise StoreError(f"{Config.mongodb_uri.env} is not a valid MongoDB connection string: {exc}") from None
        self.db = self.client[database]
        self._transactions: bool | None = None
        self._indexed: set[str] = set()

    def close(self) -> None:
        self.client.close()

    def _call(self, doing: str, action: Callable[[], T]) -> T:
        """Run `action`, turning driver errors into one StoreError that names the setting to fix."""
        try:
            return action()
        except pymongo.errors.ConnectionFailure as exc:
            if any(word in str(exc) for word in ("SSL", "certificate", "TLS")):
                raise StoreError(
                    f"MongoDB at {self.where}: the TLS handshake failed while {doing}: fix "
                    f"{Config.mongodb_tls_ca_file.env} (the CA of the server's certificate) or "
                    f"{Config.mongodb_tls.env} ({exc})"
                ) from None
            plain_refused = "reset by peer" in str(exc) and "tls" not in self.login.client_options()
            hint = f" (a server that wants TLS resets plain connections: see {Config.mongodb_tls.env})"
            hint = hint if plain_refused else ""
            raise StoreError(
                f"MongoDB at {self.where} is unreachable while {doing}: "
                f"start it or fix {Config.mongodb_uri.env}{hint} ({str(exc).split(', Timeout:')[0]})"
            ) from None
        except pymongo.errors.OperationFailure as exc:
            if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
                raise StoreError(
                    f"MongoDB at {self.where} refused the credentials in {self.login.credentials_named} while "
                    f"{doing}: fix the user or password there ({exc})"
                ) from None
            raise StoreError(f"MongoDB at {self.where} failed while {doing}: {exc}") from None
        except pymongo.errors.PyMongoError as exc:
            raise StoreError(f"MongoDB at {self.where} failed while {doing}: {exc}") from None

    def ping(self) -> None:
        self._call("connecting", lambda: self.client.admin.command("ping"))

    @property
    def transactions(self) -> bool:
        """Whether the server runs transactions: a replica set member or a mongos router."""
        if self._transactions is None:
            hello = self._call("connecting", lambda: self.client.admin.command("hello"))
            self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        return self._transactions

    def ensure_indexes(self, spec: MongoCollection) -> None:
        if spec.name in self._indexed:
            return
        collection = self.db[spec.name]
        models = [pymongo.IndexModel([(name, pymongo.ASCENDING) for name in fields]) for fields in spec.indexes]
        self._call(f"indexing {spec.name}", lambda: collection.create_indexes(models))
        self._indexed.add(spec.name)

    def replace(self, stored: StoredTable, start: datetime, end: datetime, table: pa.Table) -> int:
        """Make the documents of [start, end) exactly the rows of `table`; returns how many were written."""
        spec = _collection(stored)
        self.ensure_indexes(spec)
        documents = to_documents(table, spec)
        window = {stored.time_column: {"$gte": start, "$lt": end}}
        doing = f"replacing {spec.name} {start.date()}..{end.date()}"
        if self.transactions:
            self._call(doing, lambda: self._replace_in_transaction(spec, window, documents))
        else:
            self._call(doing, lambda: self._replace_by_upserts(spec, window, documents))
        return len(documents)

    def _replace_in_transaction(self, spec: MongoCollection, window: dict, documents: list[dict[str, Any]]) -> None:
        collection = self.db[spec.name]
        ids = [d["_id"] for d in documents]
        clear_ids = False  # a row that moved from another window (its time changed) is removed there too
        for attempt in range(TRANSACTION_ATTEMPTS):
            with self.client.start_session() as session:
                try:
                    with session.start_transaction():
                        collection.delete_many(window, session=session)
                        if clear_ids:
                            for i in range(0, len(ids), BATCH):
                                collection.delete_many({"_id": {"$in": ids[i : i + BATCH]}}, session=session)
                        for i in range(0, len(documents), BATCH):
                            collection.insert_many(documents[i : i + BATCH], ordered=False, session=session)
                    return
                except pymongo.errors.BulkWriteError as exc:
                    duplicate = any(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
                    if not duplicate or clear_ids:
                        raise
                    clear_ids = True
                except pymongo.errors.PyMongoError as exc:
                    if not exc.has_error_label("TransientTransactionError") or attempt == TRANSACTION_ATTEMPTS - 1:
                        raise
        raise StoreError(
            f"MongoDB at {self.where}: could not replace {spec.name} after {TRANSACTION_ATTEMPTS} attempts"
        )

    def _replace_by_upserts(self, spec: MongoCollection, window: dict, documents: list[dict[str, Any]]) -> None:
        collection = self.db[spec.name]
        for i in range(0, len(documents), BATCH):
            batch = documents[i : i + BATCH]
            collection.bulk_write([pymongo.ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch], ordered=False)
        collection.delete_many({**window, "_id": {"$nin": [d["_id"] for d in documents]}})

    def read(self, stored: StoredTable, start: datetime, end: datetime) -> pa.Table:
        """The documents of [start, end) as a table of the asset's schema, in time order."""
        spec = _collection(stored)
        query = {stored.time_column: {"$gte": start, "$lt": end}}
        cursor = self.db[spec.name].find(query).sort(stored.time_column, pymongo.ASCENDING)
        return from_documents(self._call(f"reading {spec.name}", lambda: list(cursor)), stored.schema)

    def counts_by_day(
        self, stored: StoredTable, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, int]:
        """Documents per UTC day of the time column (within [start, end) when given): what tests,
        the `lake_matches_mongodb` check and `status` compare with the lake."""
        spec = _collection(stored)
        window = {stored.time_column: {"$gte": start, "$lt": end}} if start and end else {}
        pipeline = [
            {"$match": window},
            {
                "$group": {
                    "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": f"${stored.time_column}"}},
                    "n": {"$sum": 1},
                }
            },
        ]
        rows = self._call(f"counting {spec.name}", lambda: list(self.db[spec.name].aggregate(pipeline)))
        return {row["_id"]: row["n"] for row in sorted(rows, key=lambda r: r["_id"])}


@dataclass(frozen=True)
class PartitionCounts:
    """One partition's rows in the lake and documents in MongoDB."""

    key: str
    lake: int
    mongo: int


def compare_partitions(
    lake: ParquetLake,
    store: MongoStore,
    asset: str,
    stored: StoredTable,
    keys: list[str],
    start: datetime,
    end: datetime,
) -> list[PartitionCounts]:
    """The partitions among `keys` (all within [start, end)) whose lake rows and MongoDB documents differ.

    A partition missing from the lake counts 0 rows there; keys are days, Mondays or first days of
    months, which is the day of the time column of their documents."""
    mongo = store.counts_by_day(stored, start, end)
    rows = lake.row_counts(asset, keys)
    return [PartitionCounts(k, rows[k], mongo.get(k, 0)) for k in keys if rows[k] != mongo.get(k, 0)]


def _collection(stored: StoredTable) -> MongoCollection:
    if stored.mongo is None:
        raise ValueError("this table is not mirrored to MongoDB (its StoredTable names no collection)")
    return stored.mongo


class MongoResource(dg.ConfigurableResource):
    """MongoDB, the operational copy; `.store()` opens a MongoStore. Empty `uri`: MongoDB is off.

    The URI may hold a password, or the user and password come as settings of their own: taken from
    the environment they stay `dg.EnvVar`s, so the UI shows the variables' names, never the values.
    """

    uri: str = setting_field(Config.mongodb_uri)
    database: str = setting_field(Config.mongodb_database)
    user: str = setting_field(Config.mongodb_user)
    password: str = setting_field(Config.mongodb_password)
    auth_source: str = setting_field(Config.mongodb_auth_source)
    tls: bool = setting_field(Config.mongodb_tls)
    tls_ca_file: str = setting_field(Config.mongodb_tls_ca_file)
    tls_allow_invalid: bool = setting_field(Config.mongodb_tls_allow_invalid)
    timeout_ms: int = 10_000

    @property
    def enabled(self) -> bool:
        return bool(self.uri.strip())

    def store(self) -> MongoStore:
        login = MongoLogin(
            self.user, self.password, self.auth_source, self.tls, self.tls_ca_file, self.tls_allow_invalid
        )
        return MongoStore(self.uri, self.database, self.timeout_ms, login)
