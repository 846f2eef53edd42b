"""One error type for every store, so a run fails with a message that names the setting to fix."""

from __future__ import annotations

from conv_analytics.errors import PlatformError


class StoreError(PlatformError):
    """A store (S3, MongoDB) could not be used; the message says which setting to fix."""
