"""Secrets per project in Postgres (`sec_secrets`), encrypted at rest, referenced by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from bend.core.secret_refs import SECRET_REFERENCE, fill_secrets, secret_names
from bend.security.errors import InvalidSecretName, SecretUndecryptable, UnknownSecret
from bend.security.keystore import Clock, utcnow
from bend.security.secretbox import SecretBox, Unsealable

__all__ = ["SECRET_REFERENCE", "SecretEntry", "SecretInfo", "SecretStore", "check_host_pattern",
           "check_secret_name", "fill_secrets", "host_allowed", "secret_names"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_HOST = re.compile(r"(\*|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*"
                   r"|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be listed about a secret: its name, times and hosts, never its value."""

    name: str
    created_at: datetime
    updated_at: datetime
    allowed_hosts: tuple[str, ...] | None = None  # None: set before hosts existed (any host)


@dataclass(frozen=True, slots=True)
class SecretEntry:
    """A secret's value with the hosts it may be sent to (None: any host)."""

    value: str
    allowed_hosts: tuple[str, ...] | None


def check_host_pattern(pattern: str) -> str:
    """`pattern` (lower-cased) if it is a host, `*.domain`, `*` or `[v6]`, each with an optional
    `:port`; else ValueError."""
    if not _HOST.fullmatch(pattern):
        raise ValueError(f"{pattern!r} is not a host name, `*.domain`, `*` or `[ipv6]` "
                         "(with an optional :port)")
    return pattern.lower()


def host_allowed(host: str, port: int | None, patterns: tuple[str, ...] | None) -> bool:
    """Whether `host:port` is one of `patterns` (None: any host)."""
    if patterns is None:
        return True
    host = host.lower().strip("[]")
    for pattern in patterns:
        name, want_port = _split_host(pattern)
        if want_port is not None and port != want_port:
            continue
        if name == "*" or name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def _split_host(pattern: str) -> tuple[str, int | None]:
    """`host[:port]` or `[v6][:port]` as (host, port or None)."""
    if pattern.startswith("["):
        end = pattern.index("]")
        rest = pattern[end + 1:]
        return pattern[1:end], int(rest[1:]) if rest else None
    name, sep, port = pattern.partition(":")
    return name, int(port) if sep else None


def check_secret_name(name: str) -> str:
    """`name` if it is a valid secret name, else InvalidSecretName."""
    if not _NAME.fullmatch(name):
        raise InvalidSecretName(name)
    return name


def _context(project: str, name: str) -> str:
    """The associated data binding a sealed value to its row."""
    return f"sec_secrets\x00{project}\x00{name}"


class SecretStore:
    """Set, get, list and delete the secrets of a project; values are sealed with SecretBox."""

    def __init__(self, pool: asyncpg.Pool, key: bytes, clock: Clock = utcnow) -> None:
        self._pool = pool
        self._box = SecretBox(key)
        self._clock = clock

    async def set(self, project: str, name: str, value: str,
                  allowed_hosts: list[str] | None = None) -> SecretInfo:
        """Store `value` as `name` of `project`, replacing any earlier value. `allowed_hosts`
        replaces the hosts it may be sent to; None keeps them (a new secret: none)."""
        check_secret_name(name)
        hosts = None if allowed_hosts is None else [check_host_pattern(h) for h in allowed_hosts]
        now = self._clock()
        row = await self._pool.fetchrow(
            "INSERT INTO sec_secrets (project, name, ciphertext, key_fingerprint, created_at,"
            " updated_at, allowed_hosts)"
            " VALUES ($1, $2, $3, $4, $5, $5, COALESCE($6::text[], '{}'))"
            " ON CONFLICT (project, name) DO UPDATE"
            " SET ciphertext = EXCLUDED.ciphertext, key_fingerprint = EXCLUDED.key_fingerprint,"
            " updated_at = EXCLUDED.updated_at,"
            " allowed_hosts = COALESCE($6::text[], sec_secrets.allowed_hosts)"
            " RETURNING name, created_at, updated_at, allowed_hosts",
            project, name, self._box.seal(value, _context(project, name)),
            self._box.fingerprint, now, hosts,
        )
        return _info(row)

    async def set_hosts(self, project: str, name: str, allowed_hosts: list[str]) -> SecretInfo:
        """Replace the hosts `name` of `project` may be sent to (its value unchanged)."""
        hosts = [check_host_pattern(h) for h in allowed_hosts]
        row = await self._pool.fetchrow(
            "UPDATE sec_secrets SET allowed_hosts = $3, updated_at = $4"
            " WHERE project = $1 AND name = $2"
            " RETURNING name, created_at, updated_at, allowed_hosts",
            project, name, hosts, self._clock())
        if row is None:
            raise UnknownSecret(name)
        return _info(row)

    async def get(self, project: str, name: str) -> str:
        """The value of `name` in `project`, or UnknownSecret / SecretUndecryptable."""
        row = await self._pool.fetchrow(
            "SELECT ciphertext, key_fingerprint FROM sec_secrets WHERE project = $1 AND name = $2",
            project, name,
        )
        if row is None:
            raise UnknownSecret(name)
        return self._open(project, name, row)

    async def values(self, project: str) -> dict[str, str]:
        """Every secret of `project` by name, decrypted (for executors and for `redact`)."""
        rows = await self._pool.fetch(
            "SELECT name, ciphertext, key_fingerprint FROM sec_secrets WHERE project = $1",
            project,
        )
        return {r["name"]: self._open(project, r["name"], r) for r in rows}

    async def entries(self, project: str) -> dict[str, SecretEntry]:
        """Every secret of `project` by name: its value and the hosts it may be sent to."""
        rows = await self._pool.fetch(
            "SELECT name, ciphertext, key_fingerprint, allowed_hosts FROM sec_secrets"
            " WHERE project = $1", project)
        return {r["name"]: SecretEntry(self._open(project, r["name"], r),
                                       None if r["allowed_hosts"] is None
                                       else tuple(r["allowed_hosts"]))
                for r in rows}

    async def list(self, project: str) -> list[SecretInfo]:
        """The secrets of `project`, names and times only, by name."""
        rows = await self._pool.fetch(
            "SELECT name, created_at, updated_at, allowed_hosts FROM sec_secrets"
            " WHERE project = $1 ORDER BY name", project,
        )
        return [_info(r) for r in rows]

    async def delete(self, project: str, name: str) -> None:
        """Delete `name` from `project`, or UnknownSecret."""
        status = await self._pool.execute(
            "DELETE FROM sec_secrets WHERE project = $1 AND name = $2", project, name
        )
        if status == "DELETE 0":
            raise UnknownSecret(name)

    def _open(self, project: str, name: str, row: asyncpg.Record) -> str:
        """Decrypt a row's value, or SecretUndecryptable."""
        if row["key_fingerprint"] != self._box.fingerprint:
            raise SecretUndecryptable(name)
        try:
            return self._box.open(row["ciphertext"], _context(project, name))
        except Unsealable:
            raise SecretUndecryptable(name) from None


def _info(row: asyncpg.Record) -> SecretInfo:
    hosts = row["allowed_hosts"]
    return SecretInfo(row["name"], row["created_at"], row["updated_at"],
                      None if hosts is None else tuple(hosts))
