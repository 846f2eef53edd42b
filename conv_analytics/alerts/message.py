"""What an alert says: the assets and partitions of a failed run, one line of reason, a link to the run.

Every value of a secret setting (and the credentials inside them: the password in a MongoDB URI, the
S3 keys of the lake) is replaced by `***` in the text before it leaves, whatever the error printed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from conv_analytics.config import Config, Setting, SettingError

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

log = logging.getLogger(__name__)
MASK = "***"
MAX_REASON = 500  # characters of the reason shown; the run page has the rest


def secret_values(config: Config) -> list[str]:
    """Every secret in force, longest first, as it may appear in text (raw and URI-escaped)."""
    found: set[str] = set()
    for setting in Config.settings():
        if setting.secret:
            found.add(_text(config, setting))
    found |= _uri_credentials(_text(config, Config.mongodb_uri))
    found |= _s3_keys(config)
    found |= {quote_plus(value) for value in found}
    return sorted((value for value in found if value), key=len, reverse=True)


def _text(config: Config, setting: Setting[Any]) -> str:
    """A setting's value as text; an invalid one as it was written (it may still be a secret)."""
    try:
        return str(config.value(setting) or "")
    except SettingError:
        return config.raw(setting)


def _uri_credentials(uri: str) -> set[str]:
    from pymongo.uri_parser import parse_uri

    if not uri:
        return set()
    try:
        parsed = parse_uri(uri, validate=False)
    except Exception:  # an invalid URI is scrubbed as a whole already
        return set()
    return {str(parsed.get("username") or ""), str(parsed.get("password") or "")}


def _s3_keys(config: Config) -> set[str]:
    """The S3 keys of an S3 lake, looked up the way the lake finds them (no lookup for a local lake)."""
    if not config.lake_root.startswith("s3://"):
        return set()
    import boto3

    try:
        credentials = boto3.Session().get_credentials()
    except Exception as exc:  # a broken AWS profile must not stop the alert
        log.warning("alert: could not look up the S3 credentials to keep them out of the message: %s", exc)
        return set()
    if credentials is None:
        return set()
    frozen = credentials.get_frozen_credentials()
    return {frozen.access_key or "", frozen.secret_key or "", frozen.token or ""}


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def error_line(error: SerializableErrorInfo) -> str:
    """The first line of the error a user's code raised, below Dagster's wrappers; no stack trace."""
    while error.cause is not None and error.cls_name is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    lines = error.message.strip().splitlines()
    line = lines[0].strip() if lines else (error.cls_name or "error")
    return line.removeprefix("dagster._core.definitions.events.Failure: ")


@dataclass(frozen=True)
class RunFailure:
    """The facts an alert reports about one failed run."""

    run_id: str
    job: str
    assets: Sequence[str]
    partitions: str  # a key, a range "first...last", or empty
    reason: str

    def payload(self, ui_url: str, secrets: Sequence[str]) -> dict[str, Any]:
        """Slack-compatible JSON: `text` for notifications and plain receivers, `blocks` for Slack."""
        reason = scrub(self.reason, secrets)
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 1] + "…"
        assets = ", ".join(self.assets) or self.job
        link = f"{ui_url}/runs/{self.run_id}"
        where = f"{assets} [{self.partitions}]" if self.partitions else assets
        text = scrub(f"conv-analytics run failed: {where}: {reason} ({link})", secrets)
        fields = [("Assets", assets), ("Partitions", self.partitions or "—"), ("Run", f"<{link}|{self.run_id[:8]}>")]
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": "conv-analytics run failed"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{_escape(value, keep_links=name == 'Run')}"}
                    for name, value in fields
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Reason*\n{_escape(reason)}"}},
        ]
        return {"text": text, "blocks": _scrub_tree(blocks, secrets)}


def _escape(text: str, keep_links: bool = False) -> str:
    """Slack mrkdwn escaping: &, < and > are control characters there."""
    if keep_links:
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _scrub_tree(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [_scrub_tree(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_tree(v, secrets) for k, v in value.items()}
    return value
