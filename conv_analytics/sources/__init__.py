"""Where conversations come from: NocoDB when it is configured, else a folder of exports (the demo's too)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from conv_analytics.config import parse_columns
from conv_analytics.sources.base import Entity, RawRecord, Source, SourceError, normalize
from conv_analytics.sources.files import FilesSource
from conv_analytics.sources.nocodb import NocoDBResource

__all__ = ["Entity", "RawRecord", "Source", "SourceError", "SourceResource", "normalize"]


class SourceResource(dg.ConfigurableResource):
    """The source the raw assets read; `columns_json` maps our field names to the source's columns."""

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
