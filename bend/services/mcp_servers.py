"""A project's MCP servers: registering one connects to it first, lists its tools and checks
their schemas, so a server that does not answer (or answers with a bad tool) is refused with
the reason and nothing is kept."""

from __future__ import annotations

from urllib.parse import urlsplit

from bend.mcp import McpServerSpec, McpTool, connect
from bend.mcp.errors import McpSecretRefused
from bend.mcp.store import RegisteredServer
from bend.security.dependencies import Security
from bend.security.egress import EgressPolicy
from bend.security.roles import Principal, require
from bend.security.secretstore import fill_secrets, host_allowed, secret_names
from bend.settings import Settings

__all__ = ["probe", "register", "remove", "servers"]


async def _headers(security: Security, project: str, server: RegisteredServer) -> dict[str, str]:
    """The headers with the secrets they name filled in, each checked for the server's host."""
    names = secret_names(server.headers)
    if not names:
        return dict(server.headers)
    entries = await security.secrets.entries(project)
    parts = urlsplit(server.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    values = {}
    for name in names:
        entry = entries.get(name)
        if entry is None:
            raise McpSecretRefused(server.name, name, "is not set for this project")
        if not host_allowed(parts.hostname or "", port, entry.allowed_hosts):
            raise McpSecretRefused(server.name, name, f"may not be sent to {parts.hostname}")
        values[name] = entry.value
    filled: dict[str, str] = fill_secrets(server.headers, values)
    return filled


async def probe(security: Security, settings: Settings, project: str,
                server: RegisteredServer) -> list[McpTool]:
    """Connect to `server` as executors would (egress policy, secrets) and list its tools."""
    spec = McpServerSpec(name=server.name, url=server.url,
                         headers=await _headers(security, project, server),
                         tools=list(server.tools) if server.tools is not None else None,
                         timeout_s=server.timeout_s)
    async with connect(spec, EgressPolicy.of(settings.egress),
                       timeout_s=settings.mcp.timeout_s) as conn:
        return conn.tools


async def register(security: Security, settings: Settings, principal: Principal,
                   server: RegisteredServer) -> tuple[RegisteredServer, list[McpTool], bool]:
    """Probe `server`, then keep it for the caller's project: the row, its tools, whether new."""
    require(principal, "components:write")
    tools = await probe(security, settings, principal.project, server)
    stored, created = await security.mcp_servers.put(principal.project, server)
    return stored, tools, created


async def servers(security: Security, principal: Principal) -> list[RegisteredServer]:
    """The caller's project's servers, by name."""
    require(principal, "components:read")
    return await security.mcp_servers.list(principal.project)


async def remove(security: Security, principal: Principal, name: str) -> None:
    """Forget server `name`; agents naming it fail until it is registered again."""
    require(principal, "components:write")
    await security.mcp_servers.delete(principal.project, name)
