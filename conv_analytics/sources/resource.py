"""The source the raw assets read, as a Dagster resource: NocoDB when it is configured, else the files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from conv_analytics.config import Config, parse_columns, pseudonym_key_in_force
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.resources import setting_field
from conv_analytics.sources.base import Source
from conv_analytics.sources.files import FilesSource
from conv_analytics.text.redact import RedactionOptions


class SourceResource(dg.ConfigurableResource):
    """Where records come from (NocoDB when its url is set, else the exports in `files_dir`) and how
    they are made safe to store: redaction options and user pseudonyms."""

    files_dir: str
    files_index: str = Field(default="", description="JSON file of the days each export file holds.")
    columns_json: str = ""
    nocodb: NocoDBResource | None = None
    phone_regions: list[str] = setting_field(Config.phone_regions)
    redact_ips: bool = setting_field(Config.redact_ips)
    pseudonymize_users: bool = setting_field(Config.pseudonymize_users)
    pseudonym_key: str = setting_field(Config.pseudonym_key)

    def redaction(self) -> RedactionOptions:
        return RedactionOptions(phone_regions=tuple(self.phone_regions), redact_ips=self.redact_ips)

    def pseudonyms(self) -> str | None:
        return pseudonym_key_in_force(self.pseudonymize_users, self.pseudonym_key)

    @property
    def columns(self) -> dict[str, dict[str, str]]:
        return parse_columns(self.columns_json)

    def open(self) -> Source:
        if self.nocodb is not None and self.nocodb.enabled:
            return self.nocodb.source(self.columns)
        return FilesSource(
            Path(self.files_dir), self.columns, index_path=Path(self.files_index) if self.files_index else None
        )
