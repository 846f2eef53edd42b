"""The production shape on one machine, each part a real process: Postgres storage (a database of its own),
`dagster code-server start`, `dagster-webserver`, `dagster-daemon` and Celery workers, with the instance
settings of deploy/dagster.yaml. Used by the deploy tests and bench/backfill.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import requests
import yaml

from conv_analytics_tests.storage_support import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "conv_analytics"
REPOSITORY = "__repository__"
PG_SETTINGS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def wait_for(what: str, check: Callable[[], Any], seconds: float, every: float = 1.0) -> Any:
    """Poll `check` until it returns something true; fail naming `what` when time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except (requests.RequestException, OSError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {seconds:.0f} s")
        time.sleep(every)


class Shape:
    """Start parts with `start_*`, stop one with `kill` (SIGKILL to its process group) or all with `stop`."""

    def __init__(self, folder: Path, settings: Mapping[str, str]) -> None:
        import psycopg2

        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home = folder / "dagster"
        self.home.mkdir(exist_ok=True)
        (self.home / "dagster.yaml").write_bytes((REPO / "deploy" / "dagster.yaml").read_bytes())
        self.database = f"deploy_{uuid.uuid4().hex[:10]}"
        self._pg = {name: settings[name] for name in PG_SETTINGS}
        self._admin = psycopg2.connect(
            host=self._pg["DAGSTER_PG_HOST"],
            port=self._pg["DAGSTER_PG_PORT"],
            user=self._pg["DAGSTER_PG_USERNAME"],
            password=self._pg["DAGSTER_PG_PASSWORD"],
            dbname=self._pg["DAGSTER_PG_DB"],
        )
        self._admin.autocommit = True
        with self._admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.database}"')
        self.grpc_port, self.web_port = free_port(), free_port()
        workspace = {
            "load_from": [{"grpc_server": {"host": "127.0.0.1", "port": self.grpc_port, "location_name": LOCATION}}]
        }
        self.workspace = folder / "workspace.yaml"
        self.workspace.write_text(yaml.safe_dump(workspace), encoding="utf-8")
        self.env = {
            **os.environ,
            **settings,
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_HOME": str(self.home),
            "CONV_ANALYTICS_EXECUTOR": "celery",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._instance: dg.DagsterInstance | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start_code_server(self) -> None:
        self._start(
            "code-server",
            [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(self.grpc_port)]
            + ["-m", "conv_analytics.definitions", "--location-name", LOCATION],
        )

    def wait_code_server(self, seconds: float = 300) -> None:
        from dagster._core.errors import DagsterUserCodeUnreachableError
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.grpc_port, host="127.0.0.1")

        def healthy() -> bool:
            self._alive("code-server")
            try:
                client.ping("")
            except DagsterUserCodeUnreachableError:
                return False
            return True

        wait_for("the code server", healthy, seconds, every=2)

    def start_webserver(self) -> None:
        self._start(
            "webserver",
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.web_port), "-w", str(self.workspace)],
        )

    def wait_webserver(self, seconds: float = 300) -> None:
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"

        def loaded() -> bool:
            self._alive("webserver")
            entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            return [(e["name"], e["loadStatus"]) for e in entries] == [(LOCATION, "LOADED")]

        wait_for("the webserver with the code location loaded", loaded, seconds, every=2)

    def start_daemon(self) -> None:
        self._start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)])

    def start_worker(self, name: str) -> None:
        self._start(name, [str(BIN / "conv-analytics"), "celery-worker", "--name", name, "--pool", "solo"])

    def wait_workers(self, names: list[str], seconds: float = 300) -> None:
        """Until every named worker answers a Celery ping through the broker."""
        from celery import Celery

        app = Celery(broker=self.env["CONV_ANALYTICS_CELERY_BROKER_URL"])
        try:

            def answering() -> bool:
                for name in names:
                    self._alive(name)
                replies = app.control.ping(timeout=1.0)
                nodes = {node.split("@")[0] for reply in replies for node in reply}
                return set(names) <= nodes

            wait_for(f"Celery workers {', '.join(names)}", answering, seconds, every=2)
        finally:
            app.close()

    def _alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def kill(self, name: str) -> None:
        """kill -9 of the part and every process it started (its process group)."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes)[::-1]:
            process = self.processes.pop(name)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in list(self.processes.values()):
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        if self._instance is not None:
            self._instance.dispose()
        with self._admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._admin.close()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def instance(self) -> dg.DagsterInstance:
        """The shape's instance (its Postgres database), read from this process."""
        if self._instance is None:
            environment = {name: self.env[name] for name in (*PG_SETTINGS, "DAGSTER_HOME")}
            saved = {name: os.environ.get(name) for name in environment}
            os.environ.update(environment)
            try:
                self._instance = dg.DagsterInstance.from_config(str(self.home))
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        return self._instance

    def set_sensor_cursor(self, sensor: str, cursor: str) -> None:
        mutation = """mutation($selector: SensorSelector!, $cursor: String) {
          setSensorCursor(sensorSelector: $selector, cursor: $cursor) { __typename ... on PythonError { message } }
        }"""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": sensor}
        result = self.graphql(mutation, {"selector": selector, "cursor": cursor})["setSensorCursor"]
        assert result["__typename"] == "Sensor", result

    def launch_backfill(self, assets: list[dg.AssetKey], partitions: list[str], tags: Mapping[str, str]) -> str:
        """A backfill launched as the UI's "Materialize selected" dialog does: launchPartitionBackfill."""
        mutation = """mutation($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
          }
        }"""
        params = {
            "partitionNames": partitions,
            "assetSelection": [{"path": key.path} for key in assets],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        result = self.graphql(mutation, {"params": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        query = """query($id: String!) {
          partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } }
        }"""
        return self.graphql(query, {"id": backfill_id})["partitionBackfillOrError"]["status"]
