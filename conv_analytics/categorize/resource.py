"""The categoriser as a Dagster resource, loaded once per process."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg

from conv_analytics.categorize import Categorizer
from conv_analytics.config import Config
from conv_analytics.resources import setting_field


@lru_cache(maxsize=4)
def _load(models: str, device: str, taxonomy: str) -> Categorizer:
    return Categorizer.load(path=models or None, device=device, taxonomy_path=taxonomy or None)


class CategorizerResource(dg.ConfigurableResource):
    """The categoriser: trained models (empty: the defaults), the taxonomy they default to, the device."""

    models: str = setting_field(Config.models)
    taxonomy: str = setting_field(Config.taxonomy)
    device: str = setting_field(Config.device)

    def load(self) -> Categorizer:
        return _load(self.models, self.device, self.taxonomy)
