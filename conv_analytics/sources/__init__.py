"""Where conversations come from: a folder of exports (the demo's too), or NocoDB (`conv_analytics.nocodb`).

Every source yields raw records that one validation turns into tables (`base.normalize`).
"""

from conv_analytics.sources.base import Entity, RawRecord, Source, SourceError, normalize

__all__ = ["Entity", "RawRecord", "Source", "SourceError", "normalize"]
