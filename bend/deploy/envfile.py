"""BEND_* env files (kustomize `configMapGenerator` inputs) read as `Settings`, and name checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bend.deploy.errors import UnknownSetting
from bend.settings import Settings

__all__ = ["SECRET_PREFIX", "is_bend_name", "read_env", "setting_for", "settings_from_env"]

# Executors read workflow secrets from `BEND_SECRET_<NAME>` (streams/executors/secrets.py).
SECRET_PREFIX = "BEND_SECRET_"  # noqa: S105 - a variable-name prefix, no secret


def setting_for(name: str) -> FieldInfo | None:
    """The Settings field a `BEND_` variable sets (`__` nests), or None when it sets nothing."""
    if not name.startswith("BEND_"):
        return None
    model: type[BaseModel] = Settings
    parts = name.removeprefix("BEND_").lower().split("__")
    field: FieldInfo | None = None
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        if i < len(parts) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return None
            model = annotation
    return field


def is_bend_name(name: str) -> bool:
    """Whether Bend reads this variable: a Settings field or an executor secret."""
    return setting_for(name) is not None or (
        name.startswith(SECRET_PREFIX) and len(name) > len(SECRET_PREFIX))


def read_env(paths: Iterable[Path]) -> dict[str, str]:
    """The variables of the env files, later files winning; unknown BEND_ names are errors."""
    out: dict[str, str] = {}
    for path in paths:
        for name, value in dotenv_values(path).items():
            if name.startswith("BEND_") and not is_bend_name(name):
                raise UnknownSetting(name, path)
            out[name] = value or ""
    return out


class _Only(Settings):
    """Settings from the given values alone: the process environment must not leak in."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """The Settings a process with exactly these variables reads (others: the defaults)."""
    nested: dict[str, Any] = {}
    for name, value in env.items():
        if setting_for(name) is None:
            continue
        *sections, leaf = name.removeprefix("BEND_").lower().split("__")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = _complex(value)
    return _Only(**nested)


def _complex(value: str) -> Any:
    """A list or object value as JSON, as pydantic-settings reads it from the environment."""
    if value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            pass  # not JSON: let the field's validation say what is wrong
    return value
