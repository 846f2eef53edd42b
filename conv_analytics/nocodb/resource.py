"""NocoDB as a Dagster resource: its settings come from `config.py`, the token as a `dg.EnvVar`."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from conv_analytics.config import Config, parse_columns
from conv_analytics.nocodb.client import NocoDBClient
from conv_analytics.nocodb.source import NocoDBSource
from conv_analytics.resources import setting_field


class NocoDBResource(dg.ConfigurableResource):
    """NocoDB as the source; an empty `url` means NocoDB is not used. The token is never logged."""

    url: str = setting_field(Config.nocodb_url)
    api_token: str = setting_field(Config.nocodb_api_token)
    base: str = setting_field(Config.nocodb_base)
    conversations_table: str = setting_field(Config.nocodb_conversations_table)
    messages_table: str = setting_field(Config.nocodb_messages_table)
    columns_json: str = Field(default="", description="Our field names mapped to the tables' column names (JSON).")
    page_size: int = setting_field(Config.nocodb_page_size)
    threads: int = setting_field(Config.nocodb_threads)
    requests_per_second: float = setting_field(Config.nocodb_requests_per_second)
    timeout_seconds: float = setting_field(Config.nocodb_timeout_seconds)
    max_retries: int = setting_field(Config.nocodb_max_retries)

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())

    def client(self) -> NocoDBClient:
        return NocoDBClient(
            self.url,
            self.api_token,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            requests_per_second=self.requests_per_second,
            pool_size=self.threads,
        )

    def source(self, columns: Mapping[str, Mapping[str, str]] | None = None) -> NocoDBSource:
        """A source over the configured tables; `columns` overrides the resource's own mapping."""
        return NocoDBSource(
            self.client(),
            base=self.base,
            tables={"conversations": self.conversations_table, "messages": self.messages_table},
            columns=columns if columns is not None else parse_columns(self.columns_json),
            page_size=self.page_size,
            threads=self.threads,
        )
