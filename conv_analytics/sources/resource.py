"""The source the raw assets read, as a Dagster resource: NocoDB when it is configured, else the files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from conv_analytics.config import parse_columns
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.sources.base import Source
from conv_analytics.sources.files import FilesSource


class SourceResource(dg.ConfigurableResource):
    """`files_dir`: the exports folder; `columns_json` maps our field names to the source's columns."""

    files_dir: str
    columns_json: str = ""
    nocodb: NocoDBResource | None = None  # used instead of the files when its url is set

    @property
    def columns(self) -> dict[str, dict[str, str]]:
        return parse_columns(self.columns_json)

    def open(self) -> Source:
        if self.nocodb is not None and self.nocodb.enabled:
            return self.nocodb.source(self.columns)
        return FilesSource(Path(self.files_dir), self.columns)
