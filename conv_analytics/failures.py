"""Inside Dagster, a failure a user fixes outside the code is a `dg.Failure` whose description is its one line.

Every asset's function is wrapped with `fails_clearly`, and the IO manager turns store errors with
`failure`: the UI, the event log and `conv-analytics run` then show the line that names the setting to
fix, not a stack of frames (the cause stays in the event log's error record).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from conv_analytics.config import SettingError
from conv_analytics.errors import PlatformError, one_line

F = TypeVar("F", bound=Callable[..., Any])
USER_ERRORS = (PlatformError, SettingError)
SETTING_PROBLEM = "setting_problem"  # Failure metadata: the line is about an invalid setting (exit code 2)


def failure(error: PlatformError | SettingError) -> dg.Failure:
    """The Failure that reports `error` as its one line."""
    return dg.Failure(
        description=one_line(error),
        metadata={SETTING_PROBLEM: dg.MetadataValue.bool(isinstance(error, SettingError))},
        allow_retries=not isinstance(error, SettingError),
    )


def fails_clearly(function: F) -> F:
    """`function` (an asset's body, plain or generator) with its user-fixable errors raised as `failure`."""
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generate(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from function(*args, **kwargs))
            except USER_ERRORS as exc:
                raise failure(exc) from exc

        return generate  # type: ignore[return-value]

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except USER_ERRORS as exc:
            raise failure(exc) from exc

    return call  # type: ignore[return-value]
