"""Secrets by name for executors; steps name secrets, never carry their values.

A run's steps see the secrets of the run's project, from the encrypted store (`StoreSecrets`,
cached briefly), and `BEND_SECRET_<NAME>` only where settings allow it (the installation's own
project by default). Each secret may be sent only to the hosts it allows; every value an
executor knows for a project is masked out of what it records (`redactor`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import asyncpg
import structlog

from bend.security.database import open_security_pool
from bend.security.keyfiles import load_keys
from bend.security.redact import Redactor
from bend.security.secretstore import (
    SECRET_REFERENCE, SecretEntry, SecretStore, fill_secrets, host_allowed, secret_names,
)
from bend.settings import Settings
from streams.executors.errors import PermanentStepError, RetryableStepError, SecretNotFound

__all__ = ["DictSecrets", "MIN_REDACTED_LENGTH", "SECRET_REFERENCE", "Secret",
           "SecretHostRefused", "SecretResolver", "SecretsUnavailable", "StoreLoader",
           "StoreSecrets", "fill_secrets", "secret_names"]

log = structlog.get_logger(__name__)

ENV_PREFIX = "BEND_SECRET_"
# Values shorter than this are not masked in recorded output: they would mask ordinary words
# (a local placeholder key such as "local"); real credentials are longer.
MIN_REDACTED_LENGTH = 8


class SecretHostRefused(PermanentStepError):
    """A step would send a secret to a host the secret does not allow."""

    def __init__(self, name: str, host: str, allowed: tuple[str, ...]) -> None:
        listed = ", ".join(allowed) if allowed else "none yet"
        super().__init__(
            f"secret {name!r} may not be sent to {host} (its allowed hosts: {listed}); if that "
            f"host should have it, add it: PUT /api/secrets/{name} "
            f"{{\"allowed_hosts\": [..., \"{host}\"]}}")
        self.name = name
        self.host = host


class SecretsUnavailable(RetryableStepError):
    """The secrets store could not be read; the step is retried."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the secrets store could not be read ({detail}); the step is retried, "
                         "check that Postgres is up (BEND_DATABASE_URL)")


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret's value and the hosts it may go to (None: any)."""

    name: str
    value: str
    allowed_hosts: tuple[str, ...] | None = None

    def for_url(self, url: str) -> str:
        """The value, if `url`'s host may receive it; else SecretHostRefused."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = None
        if not host_allowed(host, port, self.allowed_hosts):
            raise SecretHostRefused(self.name, host, self.allowed_hosts or ())
        return self.value

    def __repr__(self) -> str:  # never print values
        return f"Secret({self.name!r}, hosts={self.allowed_hosts!r})"


class SecretResolver(Protocol):
    """Turns a project's secret name into a `Secret`, and tells the values to mask."""

    async def secret(self, name: str, project: str = "default") -> Secret:
        """Secret `name` of `project`, or SecretNotFound."""
        ...

    async def redactor(self, project: str) -> Redactor:
        """Masks every value of `project`'s secrets."""
        ...


def _redactor(values: list[str]) -> Redactor:
    return Redactor(v for v in values if len(v) >= MIN_REDACTED_LENGTH)


class DictSecrets:
    """Secrets held in a dict, the same for every project (tests, local runs)."""

    def __init__(self, values: Mapping[str, str] | None = None,
                 hosts: Mapping[str, list[str]] | None = None) -> None:
        self._values = dict(values or {})
        self._hosts = {k.lower(): tuple(v) for k, v in (hosts or {}).items()}
        self._redact = _redactor(list(self._values.values()))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX,
                     hosts: Mapping[str, list[str]] | None = None) -> DictSecrets:
        """Secrets from `BEND_SECRET_<NAME>` variables; `<NAME>` is matched case-insensitively."""
        env = os.environ if environ is None else environ
        return cls({k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)},
                   hosts)

    def get(self, name: str) -> Secret | None:
        """Secret `name` (exact name first, then lower-case), or None."""
        for key in (name, name.lower()):
            if key in self._values:
                return Secret(name, self._values[key], self._hosts.get(key.lower()))
        return None

    async def secret(self, name: str, project: str = "default") -> Secret:
        """Secret `name`, whatever the project."""
        found = self.get(name)
        if found is None:
            raise SecretNotFound(name)
        return found

    async def resolve(self, name: str, project: str = "default") -> str:
        """The value of secret `name` (exact name first, then lower-case)."""
        return (await self.secret(name, project)).value

    async def redactor(self, project: str) -> Redactor:
        """Masks every value held."""
        return self._redact

    def values(self) -> list[str]:
        """Every value held."""
        return list(self._values.values())

    def __repr__(self) -> str:  # never print values
        return f"DictSecrets({sorted(self._values)})"


Loader = Callable[[str], Awaitable[dict[str, SecretEntry]]]


@dataclass(slots=True)
class _Cached:
    entries: dict[str, SecretEntry]
    redactor: Redactor
    loaded_at: float


@dataclass(slots=True)
class StoreSecrets:
    """The run's project's secrets from the encrypted store, cached for `cache_s`; names the
    store lacks fall back to `env` for the projects in `env_projects` (`*`: every project)."""

    load: Loader
    env: DictSecrets | None = None
    env_projects: frozenset[str] = frozenset()
    cache_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def _env_for(self, project: str) -> DictSecrets | None:
        if self.env is None:
            return None
        return self.env if "*" in self.env_projects or project in self.env_projects else None

    async def _project(self, project: str) -> _Cached:
        cached = self._cache.get(project)
        if cached is not None and self.clock() - cached.loaded_at < self.cache_s:
            return cached
        async with self._locks.setdefault(project, asyncio.Lock()):
            cached = self._cache.get(project)
            if cached is not None and self.clock() - cached.loaded_at < self.cache_s:
                return cached
            try:
                entries = await self.load(project)
            except SecretsUnavailable:
                raise
            except Exception as exc:  # a store outage is retried, never a permanent failure
                log.warning("secrets_store_unreadable", project=project, error=repr(exc))
                raise SecretsUnavailable(type(exc).__name__) from exc
            env = self._env_for(project)
            values = [e.value for e in entries.values()] + (env.values() if env else [])
            cached = _Cached(entries, _redactor(values), self.clock())
            self._cache[project] = cached
            return cached

    async def secret(self, name: str, project: str = "default") -> Secret:
        """Secret `name` of `project`: the store's, else the environment's where allowed."""
        entry = (await self._project(project)).entries.get(name)
        if entry is not None:
            return Secret(name, entry.value, entry.allowed_hosts)
        env = self._env_for(project)
        found = env.get(name) if env is not None else None
        if found is None:
            raise SecretNotFound(name)
        return found

    async def redactor(self, project: str) -> Redactor:
        """Masks every value `project`'s steps may see."""
        return (await self._project(project)).redactor

    def __repr__(self) -> str:
        return (f"StoreSecrets(cached={sorted(self._cache)}, "
                f"env_projects={sorted(self.env_projects)})")

    @classmethod
    def of(cls, settings: Settings) -> StoreSecrets:
        """The store of `settings` (opened on first use), with `BEND_SECRET_*` as configured."""
        conf = settings.secrets
        env = DictSecrets.from_environ(hosts=conf.env_allowed_hosts) if conf.env_fallback \
            else None
        return cls(StoreLoader(settings), env, frozenset(conf.env_projects or [settings.project]),
                   conf.cache_s)

    async def aclose(self) -> None:
        """Close the store's pool, if it was opened."""
        if isinstance(self.load, StoreLoader):
            await self.load.aclose()


class StoreLoader:
    """Reads a project's secrets from the encrypted store, over a pool opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: SecretStore | None = None
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> SecretStore:
        async with self._lock:
            if self._store is None:
                pool = await open_security_pool(self._settings, max_size=2)
                self._pool = pool
                self._store = SecretStore(pool, load_keys(self._settings).secrets_key)
            return self._store

    async def __call__(self, project: str) -> dict[str, SecretEntry]:
        return await (await self._open()).entries(project)

    async def aclose(self) -> None:
        """Close the pool."""
        pool, self._pool, self._store = self._pool, None, None
        if pool is not None:
            await pool.close()
