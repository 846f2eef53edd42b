"""The categoriser as a Dagster resource, loaded once per process."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg

from conv_analytics.categorize import Categorizer


@lru_cache(maxsize=4)
def _load(models: str, device: str) -> Categorizer:
    return Categorizer.load(path=models or None, device=device)


class CategorizerResource(dg.ConfigurableResource):
    """`models`: folder written by `conv-analytics train` (empty: shipped defaults); `device`: auto | cpu | cuda."""

    models: str = ""
    device: str = "auto"

    def load(self) -> Categorizer:
        return _load(self.models, self.device)
