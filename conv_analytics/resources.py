"""Resources take their values from the settings declared in `config.py`, never from a copy.

A resource field made with `setting_field(Config.x)` carries the setting's default and meaning;
`configured(Resource, config)` fills every such field from a configuration, a secret that came from
the environment as `dg.EnvVar` (Dagster then shows the variable's name, never its value).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field

from conv_analytics.config import Config, Setting

R = TypeVar("R", bound=dg.ConfigurableResource)


def _field_value(value: Any) -> Any:
    """A parsed setting as resource config can hold it (paths as text, tuples as lists)."""
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def setting_field(setting: Setting[Any]) -> Any:
    """A resource field whose default and description are the setting's own."""
    return Field(
        default=_field_value(setting.default_value),
        description=f"{setting.meaning} ({setting.env})",
        json_schema_extra={"setting": setting.attr},
    )


def configured(resource: type[R], config: Config, *, env_var_secrets: bool = True, **values: Any) -> R:
    """An instance of `resource` with every setting field taken from `config`; `values` add the rest.

    For Dagster (the default) a secret that came from the environment stays a `dg.EnvVar`, which Dagster
    resolves when a run starts; a resource used outside Dagster (the CLI) needs `env_var_secrets=False`.
    """
    fields: dict[str, Any] = {}
    for name, info in resource.model_fields.items():
        attr = (info.json_schema_extra or {}).get("setting") if isinstance(info.json_schema_extra, dict) else None
        if attr is None or name in values:
            continue
        setting: Setting[Any] = getattr(Config, str(attr))
        if env_var_secrets and setting.secret and config.from_environment(setting):
            fields[name] = dg.EnvVar(setting.env)
        else:
            fields[name] = _field_value(config.value(setting))
    return resource(**fields, **values)
