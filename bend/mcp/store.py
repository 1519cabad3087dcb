"""The MCP servers each project registered (`sec_mcp_servers`), beside its secrets: not run
data, so kept outside the read models a rebuild replaces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from bend.mcp.errors import UnknownMcpServer
from bend.security.keystore import Clock, utcnow

__all__ = ["McpServerStore", "RegisteredServer"]

_COLUMNS = "name, url, headers, tools, timeout_s, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class RegisteredServer:
    """A project's MCP server: where it is, its headers (secrets named), its allow-list."""

    name: str
    url: str
    headers: dict[str, str]
    tools: tuple[str, ...] | None = None
    timeout_s: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def spec(self, tools: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
        """The server as an agent's `mcp_servers` entry; `tools` (the definition's) narrows the
        registered allow-list."""
        allowed = list(self.tools) if self.tools is not None else None
        if tools is not None:
            allowed = [t for t in tools if allowed is None or t in allowed]
        return {"name": self.name, "url": self.url, "headers": dict(self.headers),
                "tools": allowed, "timeout_s": self.timeout_s}


def _server(row: asyncpg.Record) -> RegisteredServer:
    headers = row["headers"]
    return RegisteredServer(
        row["name"], row["url"], json.loads(headers) if isinstance(headers, str) else
        dict(headers), tuple(row["tools"]) if row["tools"] is not None else None,
        row["timeout_s"], row["created_at"], row["updated_at"])


class McpServerStore:
    """Register, read and remove a project's MCP servers."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def put(self, project: str, server: RegisteredServer) -> tuple[RegisteredServer, bool]:
        """Register `server` (replacing one of its name); the row, and whether it is new."""
        row = await self._pool.fetchrow(
            "INSERT INTO sec_mcp_servers (project, name, url, headers, tools, timeout_s,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $7)"
            " ON CONFLICT (project, name) DO UPDATE SET url = EXCLUDED.url,"
            " headers = EXCLUDED.headers, tools = EXCLUDED.tools,"
            " timeout_s = EXCLUDED.timeout_s, updated_at = EXCLUDED.updated_at"
            f" RETURNING {_COLUMNS}",
            project, server.name, server.url, json.dumps(server.headers),
            list(server.tools) if server.tools is not None else None, server.timeout_s,
            self._clock())
        stored = _server(row)
        return stored, stored.created_at == stored.updated_at

    async def get(self, project: str, name: str) -> RegisteredServer:
        """Server `name` of `project`, or UnknownMcpServer."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM sec_mcp_servers WHERE project = $1 AND name = $2",
            project, name)
        if row is None:
            raise UnknownMcpServer(name)
        return _server(row)

    async def list(self, project: str) -> list[RegisteredServer]:
        """The servers of `project`, by name."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM sec_mcp_servers WHERE project = $1 ORDER BY name", project)
        return [_server(r) for r in rows]

    async def servers(self, project: str) -> dict[str, RegisteredServer]:
        """The servers of `project` by name."""
        return {s.name: s for s in await self.list(project)}

    async def delete(self, project: str, name: str) -> None:
        """Remove server `name` of `project`, or UnknownMcpServer."""
        status = await self._pool.execute(
            "DELETE FROM sec_mcp_servers WHERE project = $1 AND name = $2", project, name)
        if status == "DELETE 0":
            raise UnknownMcpServer(name)
