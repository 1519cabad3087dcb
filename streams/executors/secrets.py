"""Secrets by name for executors (API keys); steps name secrets, never carry their values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from streams.executors.errors import SecretNotFound

__all__ = ["DictSecrets", "SecretResolver"]

ENV_PREFIX = "BEND_SECRET_"


class SecretResolver(Protocol):
    """Turns a project's secret name into its value, or raises `SecretNotFound`.

    Async so a store in Postgres (bend.security.secretstore) can back it.
    """

    async def resolve(self, name: str, project: str = "default") -> str:
        """The value of secret `name` in `project`."""
        ...


class DictSecrets:
    """Secrets held in a dict, the same for every project (tests, local runs)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None,
                     prefix: str = ENV_PREFIX) -> DictSecrets:
        """Secrets from `BEND_SECRET_<NAME>` variables; `<NAME>` is matched case-insensitively."""
        env = os.environ if environ is None else environ
        return cls({k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)})

    async def resolve(self, name: str, project: str = "default") -> str:
        """The value of secret `name` (exact name first, then lower-case)."""
        for key in (name, name.lower()):
            if key in self._values:
                return self._values[key]
        raise SecretNotFound(name)

    def __repr__(self) -> str:  # never print values
        return f"DictSecrets({sorted(self._values)})"
