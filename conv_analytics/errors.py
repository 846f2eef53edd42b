"""Failures a user fixes outside the code, each told as one line that names the setting to fix.

A store, source or translator that is down, refuses or is set up wrongly raises a `PlatformError`
(`StoreError`, `SourceError`, `TranslatorError`); an invalid setting raises `config.SettingError`.
Inside Dagster both become a `dg.Failure` whose description is that line (`conv_analytics.failures`);
on the command line that line ends the command with exit code 1 (a failure) or 2 (a setting to fix).
"""

from __future__ import annotations


class PlatformError(RuntimeError):
    """A store, source or translator could not be used; the message names the setting to fix."""


def one_line(error: BaseException) -> str:
    """An error's message on one line (a server's multi-line answer would otherwise split it)."""
    return " ".join(str(error).split()) or type(error).__name__
