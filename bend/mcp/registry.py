"""What an executor may reach of MCP servers: the egress policy, whether it runs stdio servers,
its timeout, and the projects' registered servers (from the store, cached briefly)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from bend.mcp.errors import UnknownMcpServer
from bend.mcp.store import McpServerStore, RegisteredServer
from bend.security.database import open_security_pool
from bend.security.egress import EgressPolicy
from bend.settings import Settings

__all__ = ["DictMcpRegistry", "McpAccess", "McpRegistry", "StoreMcpRegistry"]


class McpRegistry(Protocol):
    """The MCP servers a project registered."""

    async def server(self, project: str, name: str) -> RegisteredServer:
        """Server `name` of `project`, or UnknownMcpServer."""
        ...


class DictMcpRegistry:
    """Servers held in a dict, the same for every project (tests, local runs)."""

    def __init__(self, servers: Mapping[str, RegisteredServer] | None = None) -> None:
        self._servers = dict(servers or {})

    async def server(self, project: str, name: str) -> RegisteredServer:
        """Server `name`, whatever the project."""
        found = self._servers.get(name)
        if found is None:
            raise UnknownMcpServer(name)
        return found


@dataclass(slots=True)
class StoreMcpRegistry:
    """The store's servers, a project's list kept `cache_s`; the pool opens on first use."""

    settings: Settings
    cache_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _pool: asyncpg.Pool | None = None
    _cache: dict[str, tuple[float, dict[str, RegisteredServer]]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def server(self, project: str, name: str) -> RegisteredServer:
        """Server `name` of `project`, or UnknownMcpServer."""
        cached = self._cache.get(project)
        if cached is None or self.clock() - cached[0] >= self.cache_s:
            async with self._lock:
                if self._pool is None:
                    self._pool = await open_security_pool(self.settings, max_size=1)
            cached = (self.clock(), await McpServerStore(self._pool).servers(project))
            self._cache[project] = cached
        found = cached[1].get(name)
        if found is None:
            raise UnknownMcpServer(name)
        return found

    async def aclose(self) -> None:
        """Close the pool, if it was opened."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


@dataclass(slots=True)
class McpAccess:
    """How an executor reaches MCP servers."""

    policy: EgressPolicy = field(default_factory=EgressPolicy.open)
    registry: McpRegistry = field(default_factory=DictMcpRegistry)
    timeout_s: float = 30.0
    allow_stdio: bool = False

    @classmethod
    def of(cls, settings: Settings, policy: EgressPolicy) -> McpAccess:
        """The access `settings` give, connecting as `policy` allows."""
        return cls(policy, StoreMcpRegistry(settings, settings.mcp.cache_s),
                   settings.mcp.timeout_s, settings.mcp.allow_stdio)

    async def aclose(self) -> None:
        """Close the registry's pool, if it has one."""
        if isinstance(self.registry, StoreMcpRegistry):
            await self.registry.aclose()
