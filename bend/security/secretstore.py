"""Secrets per project in Postgres (`sec_secrets`), encrypted at rest, referenced by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from bend.security.errors import InvalidSecretName, SecretUndecryptable, UnknownSecret
from bend.security.keystore import Clock, utcnow
from bend.security.secretbox import SecretBox, Unsealable

__all__ = ["SecretInfo", "SecretStore", "check_secret_name"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be listed about a secret: its name and times, never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


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

    async def set(self, project: str, name: str, value: str) -> SecretInfo:
        """Store `value` as `name` of `project`, replacing any earlier value."""
        check_secret_name(name)
        now = self._clock()
        row = await self._pool.fetchrow(
            "INSERT INTO sec_secrets (project, name, ciphertext, key_fingerprint, created_at,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (project, name) DO UPDATE"
            " SET ciphertext = EXCLUDED.ciphertext, key_fingerprint = EXCLUDED.key_fingerprint,"
            " updated_at = EXCLUDED.updated_at RETURNING name, created_at, updated_at",
            project, name, self._box.seal(value, _context(project, name)),
            self._box.fingerprint, now,
        )
        return SecretInfo(**dict(row))

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

    async def list(self, project: str) -> list[SecretInfo]:
        """The secrets of `project`, names and times only, by name."""
        rows = await self._pool.fetch(
            "SELECT name, created_at, updated_at FROM sec_secrets WHERE project = $1 ORDER BY name",
            project,
        )
        return [SecretInfo(**dict(r)) for r in rows]

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
