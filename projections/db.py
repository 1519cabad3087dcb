"""Connections to the read models' Postgres: JSONB as Python values, search_path on one schema."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg

from bend.settings import Settings, redacted_url
from projections.errors import DatabaseUnavailable, InvalidSchemaName

__all__ = ["RawJson", "check_schema", "connect", "create_pool", "database_url"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(name: str) -> str:
    """`name` if it is a safe schema identifier (it is interpolated into SQL), else an error."""
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidSchemaName(name)
    return name


def database_url(settings: Settings) -> str:
    """The Postgres URL of the settings (BEND_DATABASE_URL, or `bend dev up`'s embedded one)."""
    return settings.database_dsn()


class RawJson:
    """JSON text to store in a JSONB column as it is (already serialised, never again)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


async def _init(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def _init_binary(conn: asyncpg.Connection) -> None:
    # JSONB in the binary format too, so COPY (always binary in asyncpg) can write it.
    await conn.set_type_codec("json", encoder=_dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("jsonb", encoder=_jsonb_binary, decoder=_jsonb_loads,
                              schema="pg_catalog", format="binary")


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(value: Any) -> str:
    return _ENCODE(value)


def _jsonb_binary(value: Any) -> bytes:
    return b"\x01" + (value.text if isinstance(value, RawJson) else _ENCODE(value)).encode()


def _jsonb_loads(data: bytes) -> Any:
    return json.loads(data[1:])  # after the format version byte


def _server_settings(schema: str) -> dict[str, str]:
    return {"search_path": check_schema(schema), "application_name": "bend"}


def _where(url: str) -> str:
    return redacted_url(url)


async def connect(url: str, schema: str) -> asyncpg.Connection:
    """One connection whose unqualified names resolve in `schema` (JSONB in binary, for COPY;
    `RawJson` values are written as they are)."""
    try:
        conn = await asyncpg.connect(url, server_settings=_server_settings(schema), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise DatabaseUnavailable(_where(url), f"cannot connect ({err})") from err
    await _init_binary(conn)
    return conn


async def create_pool(url: str, schema: str, *, min_size: int = 1,
                      max_size: int = 10) -> asyncpg.Pool:
    """A pool of connections whose unqualified names resolve in `schema`."""
    try:
        return await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, init=_init, timeout=10,
            server_settings=_server_settings(schema),
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise DatabaseUnavailable(_where(url), f"cannot connect ({err})") from err
