"""API keys in Postgres (`sec_api_keys`): create, list, revoke, verify, bootstrap an admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import BaseModel, ConfigDict

from bend.security.apikeys import ParsedKey, generate_key, hash_secret, parse_key, secret_matches
from bend.security.errors import ExpiredApiKey, InvalidApiKey, RevokedApiKey, UnknownApiKey
from bend.security.roles import Principal, Role, parse_role

__all__ = ["ApiKeyInfo", "IssuedKey", "ApiKeyStore", "Clock", "utcnow"]

Clock = Callable[[], datetime]

_COLUMNS = (
    "key_id, project, name, role, created_at, created_by, expires_at, revoked_at, last_used_at"
)
# Compared against when the key id is unknown, so both paths cost one HMAC.
_NO_HASH = "0" * 64


def utcnow() -> datetime:
    """The wall clock, timezone-aware (the default clock of the stores)."""
    return datetime.now(UTC)


class ApiKeyInfo(BaseModel):
    """What may be shown about a key: never its secret nor its hash (the API's key body adds
    whether it works now)."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    project: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def works_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ApiKeyInfo:
        """From a `sec_api_keys` row selected with _COLUMNS."""
        return cls.model_validate({**dict(row), "role": Role(row["role"])})


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: `key` is its full text, shown to its owner once and never stored."""

    key: str
    info: ApiKeyInfo

    def __repr__(self) -> str:
        return f"IssuedKey(key=***, info={self.info!r})"


class ApiKeyStore:
    """API keys of every project, hashed under the server pepper."""

    def __init__(
        self, pool: asyncpg.Pool, pepper: bytes, clock: Clock = utcnow, touch_every_s: float = 60.0
    ) -> None:
        self._pool = pool
        self._pepper = pepper
        self._clock = clock
        # last_used_at is written at most this often per key: a busy key must not turn every
        # request into a row update.
        self._touch_every = timedelta(seconds=touch_every_s)

    async def create(
        self,
        project: str,
        role: Role | str,
        *,
        name: str = "",
        created_by: str = "",
        expires_at: datetime | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> IssuedKey:
        """A new key of `project` with `role`; its full text is in the result only."""
        role = parse_role(str(role))
        text, parsed = generate_key()
        sql = (
            "INSERT INTO sec_api_keys (key_id, project, name, role, secret_hash, created_at,"
            f" created_by, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {_COLUMNS}"
        )
        args = (
            parsed.key_id, project, name, role.value, hash_secret(self._pepper, parsed),
            self._clock(), created_by, expires_at,
        )
        row = await (conn or self._pool).fetchrow(sql, *args)
        return IssuedKey(key=text, info=ApiKeyInfo.from_row(row))

    async def list(self, project: str) -> list[ApiKeyInfo]:
        """Every key of `project`, revoked and expired ones too, oldest first."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM sec_api_keys WHERE project = $1 ORDER BY created_at, key_id",
            project,
        )
        return [ApiKeyInfo.from_row(r) for r in rows]

    async def get(self, project: str, key_id: str) -> ApiKeyInfo:
        """The key `key_id` of `project`, or UnknownApiKey (also for another project's key)."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM sec_api_keys WHERE key_id = $1 AND project = $2",
            key_id, project,
        )
        if row is None:
            raise UnknownApiKey(key_id)
        return ApiKeyInfo.from_row(row)

    async def revoke(self, project: str, key_id: str) -> ApiKeyInfo:
        """Revoke the key (again is a no-op keeping the first time); UnknownApiKey if absent."""
        row = await self._pool.fetchrow(
            "UPDATE sec_api_keys SET revoked_at = coalesce(revoked_at, $3)"
            f" WHERE key_id = $1 AND project = $2 RETURNING {_COLUMNS}",
            key_id, project, self._clock(),
        )
        if row is None:
            raise UnknownApiKey(key_id)
        return ApiKeyInfo.from_row(row)

    async def verify(self, text: str) -> Principal:
        """The principal of a presented key, or InvalidApiKey, RevokedApiKey, ExpiredApiKey."""
        parsed: ParsedKey = parse_key(text)
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS}, secret_hash FROM sec_api_keys WHERE key_id = $1", parsed.key_id
        )
        # Whether the key exists, is revoked or expired is told only to holders of its secret.
        stored = row["secret_hash"] if row is not None else _NO_HASH
        if not secret_matches(self._pepper, parsed, stored) or row is None:
            raise InvalidApiKey()
        now = self._clock()
        if row["revoked_at"] is not None:
            raise RevokedApiKey(parsed.key_id)
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise ExpiredApiKey(parsed.key_id)
        last = row["last_used_at"]
        if last is None or now - last >= self._touch_every:
            await self._pool.execute(
                "UPDATE sec_api_keys SET last_used_at = $2 WHERE key_id = $1", parsed.key_id, now
            )
        return Principal(
            subject=f"key:{parsed.key_id}",
            project=row["project"],
            role=Role(row["role"]),
            key_id=parsed.key_id,
        )

    async def bootstrap_admin(self, project: str) -> IssuedKey | None:
        """An admin key for `project` if it has no active admin key yet, else None."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Two processes bootstrapping at once must not both mint a key.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('sec_bootstrap:' || $1))", project
            )
            exists = await conn.fetchval(
                "SELECT 1 FROM sec_api_keys WHERE project = $1 AND role = 'admin'"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) LIMIT 1",
                project, self._clock(),
            )
            if exists:
                return None
            return await self.create(
                project, Role.ADMIN, name="bootstrap", created_by="bootstrap", conn=conn
            )
