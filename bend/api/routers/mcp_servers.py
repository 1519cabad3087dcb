"""/api/mcp-servers: the MCP servers agents of the caller's project may name in `mcp_servers`.

Registering connects to the server and lists its tools first: an unreachable server, one the
egress policy refuses, or one listing a tool with an invalid schema is refused with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from bend.api.deps import Context, Sec, permit
from bend.api.errors import problem_responses
from bend.core.nodes import MCP_SERVER_NAME, HttpHeaders
from bend.mcp import McpTool
from bend.mcp.store import RegisteredServer
from bend.security.roles import Principal
from bend.services import mcp_servers as service

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/mcp-servers", tags=["mcp-servers"],
                   responses=problem_responses(403, 422))

Reader = Annotated[Principal, Depends(permit("components:read"))]
Writer = Annotated[Principal, Depends(permit("components:write"))]
Name = Annotated[str, Path(description="Letters, digits, `-` and single `_`; at most 32",
                           pattern=MCP_SERVER_NAME, max_length=32)]


class McpServerBody(BaseModel):
    """Where the server is (streamable HTTP), its headers and which of its tools to offer."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", max_length=2000)
    headers: HttpHeaders = Field(default_factory=dict, description=(
        "Sent with every request; name credentials as `{{ secrets.NAME }}`"))
    tools: list[str] | None = Field(default=None, description="Only these tools (all if unset)")
    timeout_s: float | None = Field(default=None, gt=0, le=600)


class McpToolView(BaseModel):
    """A tool the server lists, as agents are offered it."""

    name: str
    model_name: str  # what the model calls it: server__tool
    description: str
    input_schema: dict[str, Any]

    @classmethod
    def of(cls, tool: McpTool) -> McpToolView:
        """The view of `tool`."""
        return cls(name=tool.name, model_name=tool.model_name, description=tool.description,
                   input_schema=tool.input_schema)


class McpServerView(BaseModel):
    """A registered server; header values are not shown (only their names)."""

    name: str
    url: str
    header_names: list[str]
    tools: list[str] | None
    timeout_s: float | None
    created_at: datetime | None
    updated_at: datetime | None
    listed: list[McpToolView] | None = None  # the tools it listed when registered

    @classmethod
    def of(cls, server: RegisteredServer, listed: list[McpTool] | None = None) -> McpServerView:
        """The view of `server`, with the tools it listed if just probed."""
        return cls(name=server.name, url=server.url, header_names=sorted(server.headers),
                   tools=list(server.tools) if server.tools is not None else None,
                   timeout_s=server.timeout_s, created_at=server.created_at,
                   updated_at=server.updated_at,
                   listed=[McpToolView.of(t) for t in listed] if listed is not None else None)


class McpServerList(BaseModel):
    """The project's servers, by name."""

    items: list[McpServerView]


@router.get("", response_model=McpServerList)
async def list_servers(caller: Reader, security: Sec) -> McpServerList:
    """The project's MCP servers."""
    return McpServerList(items=[McpServerView.of(s) for s in
                                await service.servers(security, caller)])


@router.get("/{name}", response_model=McpServerView, responses=problem_responses(404))
async def get_server(name: Name, caller: Reader, security: Sec) -> McpServerView:
    """One registered server."""
    return McpServerView.of(await security.mcp_servers.get(caller.project, name))


@router.put("/{name}", response_model=McpServerView,
            responses={**problem_responses(404),
                       201: {"model": McpServerView, "description": "The server was registered"}})
async def put_server(name: Name, body: McpServerBody, response: Response, caller: Writer,
                     security: Sec, ctx: Context) -> McpServerView:
    """Connect to the server, list and check its tools, then register it (replacing one of the
    same name); 201 when new. Refused with the reason if it does not answer."""
    server = RegisteredServer(name, body.url, dict(body.headers),
                              tuple(body.tools) if body.tools is not None else None,
                              body.timeout_s)
    stored, listed, created = await service.register(security, ctx.settings, caller, server)
    response.status_code = 201 if created else 200
    log.info("mcp_server_registered", name=name, project=caller.project, actor=caller.subject,
             created=created, tools=[t.name for t in listed])
    return McpServerView.of(stored, listed)


@router.delete("/{name}", status_code=204, responses=problem_responses(404))
async def delete_server(name: Name, caller: Writer, security: Sec) -> Response:
    """Forget the server; agents naming it fail until it is registered again."""
    await service.remove(security, caller, name)
    log.info("mcp_server_removed", name=name, project=caller.project, actor=caller.subject)
    return Response(status_code=204)
