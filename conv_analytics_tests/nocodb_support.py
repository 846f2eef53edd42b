"""What the NocoDB integration tests share: the server from `scripts/servers env`, private bases.

Each test module gets bases of its own (unique titles), dropped afterwards, so tests neither see
nor disturb each other's rows on the one shared server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conv_analytics.io.manager import LakeIOManager
from conv_analytics.io.resources import LakeResource
from conv_analytics.nocodb.client import NocoDBClient
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.nocodb.setup import Tables, ensure_tables
from conv_analytics.sources.resource import SourceResource
from conv_analytics_tests.conftest import require_server

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def server() -> tuple[str, str]:
    """NOCODB_URL and NOCODB_API_TOKEN; skip without them, but fail under CI=true."""
    return require_server("NOCODB_URL", "NocoDB"), require_server("NOCODB_API_TOKEN", "NocoDB")


def resource(base: str, url: str | None = None, **settings: Any) -> NocoDBResource:
    """A resource on the test server (or on `url`, a proxy in front of it); fast by default."""
    real_url, token = server()
    options: dict[str, Any] = {
        "url": url or real_url,
        "api_token": token,
        "base": base,
        "requests_per_second": 0,
        "max_retries": 3,
        "timeout_seconds": 30,
    }
    return NocoDBResource(**{**options, **settings})


def client() -> NocoDBClient:
    url, token = server()
    return NocoDBClient(url, token, requests_per_second=0)


def drop_base(base_id: str) -> None:
    client().request("DELETE", f"/api/v2/meta/bases/{base_id}", what="base cleanup")


def new_base(prefix: str) -> Iterator[tuple[str, Tables]]:
    """A fresh base with the default tables, dropped when the test module is done."""
    title = f"{prefix}-{uuid.uuid4().hex[:8]}"
    tables = ensure_tables(client(), title)
    try:
        yield title, tables
    finally:
        drop_base(tables.base_id)


def lake_resources(root: Path, nocodb: NocoDBResource) -> dict[str, object]:
    """The resources of the raw assets and the checks, on a temporary lake."""
    lake = LakeResource(root=str(root))
    return {
        "lake": lake,
        "io_manager": LakeIOManager(lake=lake),
        "source": SourceResource(files_dir=str(root / "no-files"), columns_json=nocodb.columns_json, nocodb=nocodb),
        "nocodb": nocodb,
    }
