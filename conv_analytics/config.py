"""Every setting of the platform, each declared once: its variable, default, meaning, parser and secrecy.

`Config` is a snapshot of the environment whose values are parsed on first use, so a bad value fails
only the command that needs it, with one line naming the variable and what it expects. Resources take
their values from here (`conv_analytics.resources.configured`), secrets as `dg.EnvVar` so Dagster
shows their name and never their value. The README's table is generated from the declarations
(`conv-analytics config --markdown`). No other module reads the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class SettingError(ValueError):
    """A setting's value cannot be used; the message names the variable and what it expects."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable. As a class attribute of `Config` it reads as its parsed value."""

    env: str
    default: str
    meaning: str
    parse: Callable[[str], T] = str  # type: ignore[assignment]
    expected: str = ""  # what a valid value looks like, for the error message
    secret: bool = False

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "attr", name)

    @overload
    def __get__(self, config: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, config: Config, owner: type) -> T: ...
    def __get__(self, config: Config | None, owner: type) -> Setting[T] | T:
        return self if config is None else config.value(self)

    @property
    def default_value(self) -> T:
        return self.parse(self.default)


def _optional_path(raw: str) -> Path | None:
    return Path(raw).expanduser() if raw else None


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(raw)
        return value

    return parse


def _positive_number(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(raw)
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def _boolean(raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError(raw)


def _hour(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 23:
        raise ValueError(raw)
    return value


def _http_url(raw: str) -> str:
    if raw and not raw.startswith(("http://", "https://")):
        raise ValueError(raw)
    return raw


def _sse(raw: str) -> str:
    """AES256 or aws:kms, as S3 spells them; empty: none asked for."""
    if not raw:
        return ""
    for choice in ("AES256", "aws:kms"):
        if raw.lower() == choice.lower():
            return choice
    raise ValueError(raw)


def _translator(raw: str) -> str:
    """none | apertium | libretranslate; empty: apertium where its pairs are installed, else none."""
    if not raw:
        from conv_analytics.translate.messages import default_kind

        return default_kind()
    return _choice("none", "apertium", "libretranslate")(raw)


def _phone_regions(raw: str) -> tuple[str, ...]:
    """Comma-separated ISO 3166 region codes, each one libphonenumber knows."""
    from conv_analytics.text.redact import RedactionOptions

    return RedactionOptions(phone_regions=raw).phone_regions  # type: ignore[return-value]


def parse_columns(raw: str) -> dict[str, dict[str, str]]:
    """CONV_ANALYTICS_COLUMNS: per entity, our field names mapped to the source's column names."""
    if not raw:
        return {}
    columns = json.loads(raw)
    if not isinstance(columns, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in columns.values()
    ):
        raise ValueError(raw)
    return columns


class Config:
    """The settings in force: `Config.from_env()` for the environment, `Config(home=...)` in tests."""

    home = Setting(
        "CONV_ANALYTICS_HOME",
        "./.conv_analytics",
        "Working folder: local Parquet lake, demo source files, reports, the Dagster instance.",
        lambda raw: Path(raw).expanduser().resolve(),
        "a folder path",
    )
    start_date = Setting(
        "CONV_ANALYTICS_START_DATE",
        "2024-01-01",
        "First day of the daily partitions (UTC).",
        date.fromisoformat,
        "a date YYYY-MM-DD",
    )
    source_dir = Setting(
        "CONV_ANALYTICS_SOURCE_DIR",
        "",
        "Folder of NocoDB-shaped JSONL/CSV exports for the files source (default: <home>/source).",
        _optional_path,
        "a folder path",
    )
    columns = Setting(
        "CONV_ANALYTICS_COLUMNS",
        "",
        'JSON mapping of our field names to your column names, e.g. {"messages": {"text": "body"}}.',
        parse_columns,
        'JSON like {"messages": {"text": "body"}, "conversations": {...}}',
    )
    models = Setting(
        "CONV_ANALYTICS_MODELS",
        "",
        "Folder of trained categorisation models (`conv-analytics train`); empty: the shipped defaults.",
        _optional_path,
        "a folder path",
    )
    taxonomy = Setting(
        "CONV_ANALYTICS_TAXONOMY",
        "",
        "YAML file of topic and intent labels with keywords and examples; empty: the shipped taxonomy.",
        _optional_path,
        "a file path",
    )
    device = Setting(
        "CONV_ANALYTICS_DEVICE",
        "auto",
        "Where categorisation kernels run: auto (CUDA if a GPU is found), cpu or cuda.",
        _choice("auto", "cpu", "cuda"),
        "auto, cpu or cuda",
    )
    fallback_patterns = Setting(
        "CONV_ANALYTICS_FALLBACK_PATTERNS",
        "",
        "Extra regular expressions (separated by ||) that mark an assistant reply as a fallback (did not understand).",
        lambda raw: tuple(p for p in raw.split("||") if p),
        "regular expressions separated by ||",
    )
    translator = Setting(
        "CONV_ANALYTICS_TRANSLATOR",
        "",
        "Engine that translates non-English messages to English: none, apertium or libretranslate "
        "(empty: apertium where its Debian pairs are installed, else none).",
        _translator,
        "none, apertium or libretranslate",
    )
    translator_url = Setting(
        "CONV_ANALYTICS_TRANSLATOR_URL",
        "",
        "apertium-apy or LibreTranslate server address; apertium without it runs the local `apertium` command.",
        lambda raw: raw.rstrip("/"),
    )
    translator_api_key = Setting(
        "CONV_ANALYTICS_TRANSLATOR_API_KEY", "", "LibreTranslate API key (never logged).", secret=True
    )
    translator_required = Setting(
        "CONV_ANALYTICS_TRANSLATOR_REQUIRED",
        "true",
        "true: a translator that is down or slow fails the step; false: those texts stay untranslated and are counted.",
        _boolean,
        "true or false",
    )
    phone_regions = Setting(
        "CONV_ANALYTICS_PHONE_REGIONS",
        "US,GB,DE,FR,IN,ES,IT,BR,AU",
        "Regions whose national phone formats redaction recognises (numbers written with + are found for any).",
        _phone_regions,
        "ISO 3166 region codes separated by commas, e.g. US,GB",
    )
    redact_ips = Setting(
        "CONV_ANALYTICS_REDACT_IPS", "true", "Redact IPv4 and IPv6 addresses in messages.", _boolean, "true or false"
    )
    pseudonymize_users = Setting(
        "CONV_ANALYTICS_PSEUDONYMIZE_USERS",
        "false",
        "Replace every user_id by its keyed hash (HMAC-SHA256 with the pseudonym key) before it is stored.",
        _boolean,
        "true or false",
    )
    pseudonym_key = Setting(
        "CONV_ANALYTICS_PSEUDONYM_KEY",
        "",
        "Secret key of the user pseudonyms (at least 32 characters; never logged). Keep it: a new key gives new ids.",
        secret=True,
    )
    topics_window_days = Setting(
        "CONV_ANALYTICS_TOPICS_WINDOW_DAYS",
        "28",
        "Days of conversations each weekly refit of the discovered topics and intents learns from.",
        _whole_number(1),
        "a whole number of days, at least 1",
    )
    topics_max_texts = Setting(
        "CONV_ANALYTICS_TOPICS_MAX_TEXTS",
        "100000",
        "Most documents (conversations for topics, user messages for intents) one weekly refit learns "
        "from: a larger window is sampled by a hash of each document's id, so a fit's time and memory "
        "stay bounded however busy the weeks get.",
        _whole_number(1),
        "a whole number of documents, at least 1",
    )
    run_batch_messages = Setting(
        "CONV_ANALYTICS_RUN_BATCH_MESSAGES",
        "400000",
        "Most messages one run of `conv-analytics run` takes at once: a longer range is materialised in "
        "runs of whole days (weeks, months) of about this many messages (conversations for the weekly and "
        "monthly rollups, which read only those), so memory does not grow with it.",
        _whole_number(1),
        "a whole number of messages, at least 1",
    )
    topic_source = Setting(
        "CONV_ANALYTICS_TOPIC_SOURCE",
        "auto",
        "Which topic and intent the rollups use: auto (the taxonomy's where confident, else the discovered one), "
        "taxonomy or discovered.",
        _choice("auto", "taxonomy", "discovered"),
        "auto, taxonomy or discovered",
    )
    lake_url = Setting(
        "CONV_ANALYTICS_LAKE_URL",
        "",
        "Lake root override, e.g. s3://bucket/prefix (default: <home>/lake, or S3 when S3_BUCKET is set).",
        lambda raw: raw.rstrip("/"),
    )
    nocodb_url = Setting(
        "NOCODB_URL",
        "",
        "NocoDB base URL, e.g. http://127.0.0.1:8080. When set, NocoDB is the source.",
        lambda raw: raw.rstrip("/"),
    )
    nocodb_api_token = Setting(
        "NOCODB_API_TOKEN", "", "NocoDB API token (sent as xc-token; never logged).", secret=True
    )
    nocodb_base = Setting("NOCODB_BASE", "", "NocoDB base id or title holding the tables.")
    nocodb_conversations_table = Setting(
        "NOCODB_CONVERSATIONS_TABLE", "conversations", "Conversations table id or title."
    )
    nocodb_messages_table = Setting("NOCODB_MESSAGES_TABLE", "messages", "Messages table id or title.")
    nocodb_page_size = Setting(
        "NOCODB_PAGE_SIZE",
        "1000",
        "Rows asked for per page (the server may return fewer; paging follows pageInfo).",
        _whole_number(1),
        "a whole number of at least 1",
    )
    nocodb_threads = Setting(
        "NOCODB_THREADS",
        "4",
        "Parallel requests for independent windows and pages.",
        _whole_number(1),
        "a whole number of at least 1",
    )
    nocodb_requests_per_second = Setting(
        "NOCODB_REQUESTS_PER_SECOND",
        "4",
        "Client-side rate limit (NocoDB throttles at about 5/s).",
        _positive_number,
        "a number above 0",
    )
    nocodb_timeout_seconds = Setting(
        "NOCODB_TIMEOUT_SECONDS", "30", "Timeout of one HTTP request.", _positive_number, "a number above 0"
    )
    nocodb_max_retries = Setting(
        "NOCODB_MAX_RETRIES",
        "6",
        "Retries on timeouts, 5xx and 429 (exponential back-off, honouring Retry-After).",
        _whole_number(0),
        "a whole number of at least 0",
    )
    nocodb_poll_seconds = Setting(
        "NOCODB_POLL_SECONDS",
        "60",
        "Seconds between two ticks of the nocodb_changes sensor (the daemon asks NocoDB for changed rows).",
        _whole_number(1),
        "a whole number of at least 1",
    )
    automation_seconds = Setting(
        "CONV_ANALYTICS_AUTOMATION_SECONDS",
        "30",
        "Seconds between two evaluations of the automation conditions (the `automation` sensor).",
        _whole_number(1),
        "a whole number of at least 1",
    )
    s3_bucket = Setting("S3_BUCKET", "", "Bucket of the Parquet lake. When set, the lake lives on S3.")
    s3_prefix = Setting(
        "S3_PREFIX", "conv-analytics", "Key prefix of the lake inside the bucket.", lambda raw: raw.strip("/")
    )
    s3_endpoint_url = Setting(
        "S3_ENDPOINT_URL", "", "Endpoint of an S3-compatible store (SeaweedFS, MinIO); empty: AWS."
    )
    aws_region = Setting(
        "AWS_REGION", "us-east-1", "Region for S3 (credentials come the usual AWS way: AWS_ACCESS_KEY_ID, ...)."
    )
    s3_sse = Setting(
        "S3_SSE",
        "",
        "Server-side encryption asked for on every lake object: AES256 (SSE-S3) or aws:kms (SSE-KMS); "
        "empty: the bucket's default.",
        _sse,
        "AES256 or aws:kms",
    )
    s3_sse_kms_key_id = Setting(
        "S3_SSE_KMS_KEY_ID", "", "KMS key id or ARN for S3_SSE=aws:kms (empty: the account's aws/s3 key)."
    )
    mongodb_uri = Setting(
        "MONGODB_URI",
        "",
        "MongoDB connection string. When set, assets are also written to MongoDB.",
        secret=True,
    )
    mongodb_database = Setting("MONGODB_DATABASE", "conv_analytics", "MongoDB database name.")
    mongodb_user = Setting(
        "MONGODB_USER",
        "",
        "MongoDB user (SCRAM; never logged); overrides a user in MONGODB_URI. Empty: the URI's, if any.",
        secret=True,
    )
    mongodb_password = Setting(
        "MONGODB_PASSWORD", "", "Password of MONGODB_USER (never logged; any characters, no URI escaping).", secret=True
    )
    mongodb_auth_source = Setting(
        "MONGODB_AUTH_SOURCE", "", "Database that holds MONGODB_USER (empty: the URI's, else admin)."
    )
    mongodb_tls = Setting(
        "MONGODB_TLS",
        "false",
        "Connect to MongoDB over TLS (also on when the URI says tls=true).",
        _boolean,
        "true or false",
    )
    mongodb_tls_ca_file = Setting(
        "MONGODB_TLS_CA_FILE",
        "",
        "PEM file of the CA that signed the MongoDB server's certificate (turns TLS on).",
        _optional_path,
        "a file path",
    )
    mongodb_tls_allow_invalid = Setting(
        "MONGODB_TLS_ALLOW_INVALID",
        "false",
        "Accept any MongoDB server certificate and host name (testing only: it gives up TLS's protection).",
        _boolean,
        "true or false",
    )
    alert_webhook_url = Setting(
        "CONV_ANALYTICS_ALERT_WEBHOOK_URL",
        "",
        "Slack-compatible incoming webhook that gets one message per failed run (never logged). Empty: no alerts.",
        _http_url,
        "an http(s) URL",
        secret=True,
    )
    ui_url = Setting(
        "CONV_ANALYTICS_UI_URL",
        "http://127.0.0.1:3000",
        "Address of the Dagster UI, for the run links in alerts.",
        lambda raw: _http_url(raw).rstrip("/"),
        "an http(s) URL",
    )
    fresh_by_hour = Setting(
        "CONV_ANALYTICS_FRESH_BY_HOUR",
        "6",
        "Hour (UTC, 0-23) by which yesterday's daily partitions should exist; later, their freshness checks warn.",
        _hour,
        "a whole number from 0 to 23",
    )
    executor = Setting(
        "CONV_ANALYTICS_EXECUTOR",
        "multiprocess",
        "How Dagster runs the steps of a run: multiprocess (one process per step), in_process, celery (steps "
        "spread over Celery workers on any host) or k8s (one Kubernetes job per step). The CLI always runs in process.",
        _choice("multiprocess", "in_process", "celery", "k8s"),
        "multiprocess, in_process, celery or k8s",
    )
    celery_broker_url = Setting(
        "CONV_ANALYTICS_CELERY_BROKER_URL",
        "redis://127.0.0.1:6379/0",
        "Celery broker of the celery executor and its workers (Redis).",
        secret=True,
    )
    celery_backend_url = Setting(
        "CONV_ANALYTICS_CELERY_BACKEND_URL",
        "",
        "Celery result backend (default: the broker).",
        secret=True,
    )
    celery_visibility_timeout = Setting(
        "CONV_ANALYTICS_CELERY_VISIBILITY_TIMEOUT",
        "3600",
        "Seconds after which a step taken by a worker that died is handed to another worker; keep it above "
        "the longest step.",
        _whole_number(1),
        "a whole number of seconds, at least 1",
    )
    dagster_home = Setting(
        "DAGSTER_HOME",
        "",
        "Folder of the Dagster instance (runs, event log, schedules); default: <home>/dagster.",
        lambda raw: Path(raw).expanduser().resolve() if raw else None,
        "a folder path",
    )

    def __init__(self, environ: Mapping[str, str] | None = None, **values: Any) -> None:
        """`environ`: the variables to read (none: every default); `values`: parsed values by attribute."""
        unknown = set(values) - {s.attr for s in self.settings()}
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        self._environ = dict(environ or {})
        self._values: dict[str, Any] = dict(values)

    @classmethod
    def from_env(cls) -> Config:
        return cls(os.environ)

    @classmethod
    def settings(cls) -> list[Setting[Any]]:
        return [v for v in vars(cls).values() if isinstance(v, Setting)]

    def raw(self, setting: Setting[Any]) -> str:
        """The text the setting has in force (its default when the variable is unset)."""
        return self._environ.get(setting.env, setting.default).strip()

    def from_environment(self, setting: Setting[Any]) -> bool:
        """Whether the value in force came from the environment (not a default, not given in code)."""
        return setting.attr not in self._values and bool(self._environ.get(setting.env, "").strip())

    def value(self, setting: Setting[T]) -> T:
        if setting.attr not in self._values:
            raw = self.raw(setting)
            try:
                self._values[setting.attr] = setting.parse(raw)
            except (ValueError, TypeError):
                shown = "***" if setting.secret else repr(raw)
                expected = f": expected {setting.expected}" if setting.expected else ""
                raise SettingError(f"{setting.env}={shown} is not valid{expected}") from None
        return self._values[setting.attr]

    def problems(self) -> dict[str, str]:
        """Every invalid setting with its message (what `conv-analytics config` marks)."""
        found = {}
        for setting in self.settings():
            try:
                self.value(setting)
            except SettingError as exc:
                found[setting.env] = str(exc)
        return found

    def validated(self) -> Config:
        """This configuration, once every setting parses; else one SettingError naming each invalid one."""
        problems = self.problems()
        if problems:
            raise SettingError("; ".join(problems.values()))
        return self

    @property
    def source_folder(self) -> Path:
        return self.source_dir or self.home / "source"

    @property
    def lake_root(self) -> str:
        """Where the Parquet lake lives: a local path or an s3:// URL."""
        if self.lake_url:
            return self.lake_url
        if self.s3_bucket:
            return f"s3://{self.s3_bucket}/{self.s3_prefix}".rstrip("/")
        return str(self.home / "lake")

    @property
    def files_index(self) -> Path:
        """Which days each export file holds, learnt once and kept for runs in other processes."""
        return self.home / "state" / "files-index.json"

    @property
    def claims_dir(self) -> Path:
        """Which run is writing which partitions right now (conv_analytics.io.claims)."""
        return self.home / "state" / "claims"

    @property
    def translations_dir(self) -> Path:
        """The translation cache, kept across runs: a text seen again is not sent again."""
        return self.home / "translations"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def instance_dir(self) -> Path:
        """The Dagster instance the CLI and `conv-analytics ui` share: DAGSTER_HOME, else <home>/dagster."""
        return self.dagster_home or self.home / "dagster"


def pseudonym_key_in_force(enabled: bool, key: str) -> str | None:
    """The key of the user pseudonyms when they are on; a missing or short key is an error."""
    if not enabled:
        return None
    if len(key) < 32:
        raise SettingError(
            f"{Config.pseudonymize_users.env}=true needs {Config.pseudonym_key.env} "
            "set to a secret of at least 32 characters"
        )
    return key


def settings_table_markdown() -> str:
    """The README's configuration table."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    rows += [f"| `{s.env}` | {f'`{s.default}`' if s.default else '—'} | {s.meaning} |" for s in Config.settings()]
    return "\n".join(rows)
