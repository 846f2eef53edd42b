"""Every setting of the platform, read from environment variables in this one place.

`SETTINGS` lists each variable with its default and meaning; the README table is generated from it
(`conv-analytics config`), so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CONV_ANALYTICS_HOME",
        "./.conv_analytics",
        "Working folder: local Parquet lake, demo source files, reports.",
    ),
    Setting("CONV_ANALYTICS_START_DATE", "2024-01-01", "First day of the daily partitions (UTC)."),
    Setting(
        "CONV_ANALYTICS_SOURCE_DIR",
        "",
        "Folder of NocoDB-shaped JSONL/CSV exports for the files source (default: <home>/source).",
    ),
    Setting(
        "CONV_ANALYTICS_COLUMNS",
        "",
        'JSON mapping of our field names to your column names, e.g. {"messages": {"text": "body"}}.',
    ),
    Setting(
        "CONV_ANALYTICS_MODELS",
        "",
        "Folder of trained categorisation models (`conv-analytics train`); empty: the shipped defaults.",
    ),
    Setting(
        "CONV_ANALYTICS_TAXONOMY",
        "",
        "YAML file of topic and intent labels with keywords and examples; empty: the shipped taxonomy.",
    ),
    Setting(
        "CONV_ANALYTICS_DEVICE",
        "auto",
        "Where categorisation kernels run: auto (CUDA if a GPU is found), cpu or cuda.",
    ),
    Setting(
        "CONV_ANALYTICS_FALLBACK_PATTERNS",
        "",
        "Extra regular expressions (separated by ||) that mark an assistant reply as a fallback (did not understand).",
    ),
    Setting(
        "CONV_ANALYTICS_LAKE_URL",
        "",
        "Lake root override, e.g. s3://bucket/prefix (default: <home>/lake, or S3 when S3_BUCKET is set).",
    ),
    Setting(
        "NOCODB_URL",
        "",
        "NocoDB base URL, e.g. http://127.0.0.1:8080. When set, NocoDB is the source.",
    ),
    Setting("NOCODB_API_TOKEN", "", "NocoDB API token (sent as xc-token; never logged)."),
    Setting("NOCODB_BASE", "", "NocoDB base id or title holding the tables."),
    Setting("NOCODB_CONVERSATIONS_TABLE", "conversations", "Conversations table id or title."),
    Setting("NOCODB_MESSAGES_TABLE", "messages", "Messages table id or title."),
    Setting(
        "NOCODB_PAGE_SIZE",
        "1000",
        "Rows asked for per page (the server may return fewer; paging follows pageInfo).",
    ),
    Setting("NOCODB_THREADS", "4", "Parallel requests for independent windows and pages."),
    Setting("NOCODB_REQUESTS_PER_SECOND", "4", "Client-side rate limit (NocoDB throttles at about 5/s)."),
    Setting("NOCODB_TIMEOUT_SECONDS", "30", "Timeout of one HTTP request."),
    Setting(
        "NOCODB_MAX_RETRIES",
        "6",
        "Retries on timeouts, 5xx and 429 (exponential back-off, honouring Retry-After).",
    ),
    Setting("S3_BUCKET", "", "Bucket of the Parquet lake. When set, the lake lives on S3."),
    Setting("S3_PREFIX", "conv-analytics", "Key prefix of the lake inside the bucket."),
    Setting("S3_ENDPOINT_URL", "", "Endpoint of an S3-compatible store (SeaweedFS, MinIO); empty: AWS."),
    Setting(
        "AWS_REGION",
        "us-east-1",
        "Region for S3 (credentials come the usual AWS way: AWS_ACCESS_KEY_ID, ...).",
    ),
    Setting(
        "MONGODB_URI",
        "",
        "MongoDB connection string. When set, assets are also written to MongoDB.",
    ),
    Setting("MONGODB_DATABASE", "conv_analytics", "MongoDB database name."),
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}


def env(name: str) -> str:
    """The variable's value, or its documented default (only names listed in SETTINGS)."""
    return os.environ.get(name, _DEFAULTS[name]).strip()


def _int(name: str) -> int:
    raw = env(name)
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None


def _float(name: str) -> float:
    raw = env(name)
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def parse_columns(raw: str) -> dict[str, dict[str, str]]:
    """CONV_ANALYTICS_COLUMNS: per entity, our field names mapped to the source's column names."""
    if not raw:
        return {}
    try:
        columns = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"CONV_ANALYTICS_COLUMNS is not valid JSON: {exc}") from None
    if not isinstance(columns, dict) or not all(isinstance(v, dict) for v in columns.values()):
        raise ValueError('CONV_ANALYTICS_COLUMNS must look like {"messages": {"text": "body"}, "conversations": {...}}')
    return columns


@dataclass(frozen=True)
class Config:
    """A snapshot of the settings; `Config.from_env()` reads them, tests build one directly."""

    home: Path = field(default_factory=lambda: Path(_DEFAULTS["CONV_ANALYTICS_HOME"]))
    start_date: date = date(2024, 1, 1)
    source_dir: Path | None = None
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    models: Path | None = None
    taxonomy: Path | None = None
    device: str = "auto"
    fallback_patterns: tuple[str, ...] = ()
    lake_url: str = ""
    nocodb_url: str = ""
    nocodb_api_token: str = field(default="", repr=False)
    nocodb_base: str = ""
    nocodb_conversations_table: str = "conversations"
    nocodb_messages_table: str = "messages"
    nocodb_page_size: int = 1000
    nocodb_threads: int = 4
    nocodb_requests_per_second: float = 4.0
    nocodb_timeout_seconds: float = 30.0
    nocodb_max_retries: int = 6
    s3_bucket: str = ""
    s3_prefix: str = "conv-analytics"
    s3_endpoint_url: str = ""
    aws_region: str = "us-east-1"
    mongodb_uri: str = field(default="", repr=False)
    mongodb_database: str = "conv_analytics"

    @classmethod
    def from_env(cls) -> Config:
        raw_start = env("CONV_ANALYTICS_START_DATE")
        try:
            start = date.fromisoformat(raw_start)
        except ValueError:
            raise ValueError(f"CONV_ANALYTICS_START_DATE={raw_start!r} is not a date (YYYY-MM-DD)") from None
        columns = parse_columns(env("CONV_ANALYTICS_COLUMNS"))
        home = Path(env("CONV_ANALYTICS_HOME")).expanduser().resolve()
        optional_path = lambda name: Path(env(name)).expanduser() if env(name) else None  # noqa: E731
        return cls(
            home=home,
            start_date=start,
            source_dir=optional_path("CONV_ANALYTICS_SOURCE_DIR"),
            columns=columns,
            models=optional_path("CONV_ANALYTICS_MODELS"),
            taxonomy=optional_path("CONV_ANALYTICS_TAXONOMY"),
            device=env("CONV_ANALYTICS_DEVICE").lower(),
            fallback_patterns=tuple(p for p in env("CONV_ANALYTICS_FALLBACK_PATTERNS").split("||") if p),
            lake_url=env("CONV_ANALYTICS_LAKE_URL"),
            nocodb_url=env("NOCODB_URL").rstrip("/"),
            nocodb_api_token=env("NOCODB_API_TOKEN"),
            nocodb_base=env("NOCODB_BASE"),
            nocodb_conversations_table=env("NOCODB_CONVERSATIONS_TABLE"),
            nocodb_messages_table=env("NOCODB_MESSAGES_TABLE"),
            nocodb_page_size=_int("NOCODB_PAGE_SIZE"),
            nocodb_threads=_int("NOCODB_THREADS"),
            nocodb_requests_per_second=_float("NOCODB_REQUESTS_PER_SECOND"),
            nocodb_timeout_seconds=_float("NOCODB_TIMEOUT_SECONDS"),
            nocodb_max_retries=_int("NOCODB_MAX_RETRIES"),
            s3_bucket=env("S3_BUCKET"),
            s3_prefix=env("S3_PREFIX").strip("/"),
            s3_endpoint_url=env("S3_ENDPOINT_URL"),
            aws_region=env("AWS_REGION"),
            mongodb_uri=env("MONGODB_URI"),
            mongodb_database=env("MONGODB_DATABASE"),
        )

    @property
    def source_folder(self) -> Path:
        return self.source_dir or self.home / "source"

    @property
    def lake_root(self) -> str:
        """Where the Parquet lake lives: a local path or an s3:// URL."""
        if self.lake_url:
            return self.lake_url.rstrip("/")
        if self.s3_bucket:
            return f"s3://{self.s3_bucket}/{self.s3_prefix}".rstrip("/")
        return str(self.home / "lake")

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def settings_table_markdown() -> str:
    """The README's configuration table."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    rows += [f"| `{s.name}` | {f'`{s.default}`' if s.default else '—'} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows)
