"""One MCP server, connected with the official `mcp` client: its tools listed and checked when
the connection opens, then called by name.

Streamable HTTP servers are reached through the egress policy; stdio servers (a command run
beside the caller) only where `allow_stdio` says so. Tools' input schemas must be JSON Schema
objects; a server's `tools` allow-list keeps only the tools it names.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent, Tool
from pydantic import BaseModel, ConfigDict, Field

from bend.core.errors import BendError
from bend.core.nodes import MCP_SERVER_NAME
from bend.mcp.errors import (
    McpServerUnreachable, McpStdioRefused, McpToolMissing, McpToolSchemaInvalid,
)
from bend.mcp.transport import guarded_client
from bend.security.egress import EgressPolicy

__all__ = ["McpCallResult", "McpConnection", "McpServerSpec", "McpTool", "connect",
           "model_name"]

log = structlog.get_logger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64  # what OpenAI-compatible APIs take as a function name
_LISTED_PAGES = 50  # a server paging its tools forever is cut off here


class McpServerSpec(BaseModel):
    """Where an MCP server is and what of it to use; header values are resolved (secrets in)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=MCP_SERVER_NAME, max_length=32)
    url: str | None = Field(default=None, pattern=r"^https?://")
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] | None = None  # the allow-list; None: every tool the server lists
    timeout_s: float | None = Field(default=None, gt=0)

    @property
    def where(self) -> str:
        """The URL, or the command line."""
        return self.url or " ".join([self.command or "", *self.args]).strip()

    def __repr__(self) -> str:  # header values may be secrets
        return f"McpServerSpec({self.name!r}, {self.where!r}, headers={sorted(self.headers)})"


def model_name(server: str, tool: str) -> str:
    """The name the model calls a server's tool by: `server__tool`, made safe for function
    names (letters, digits, `_`, `-`; at most 64)."""
    return _UNSAFE.sub("_", f"{server}__{tool}")[:_MAX_NAME]


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool a server lists: its name there, the name the model sees, and its schema."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def model_name(self) -> str:
        """`server__tool`."""
        return model_name(self.server, self.name)

    @property
    def ref(self) -> str:
        """How calls of it are recorded: `mcp:server/tool`."""
        return f"mcp:{self.server}/{self.name}"


@dataclass(frozen=True, slots=True)
class McpCallResult:
    """A call's result (JSON), or the error the tool reported (`result` then None)."""

    result: Any = None
    error: str | None = None


def _schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a JSON Schema object an LLM can be given, or None."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "its root is not `{\"type\": \"object\", ...}`"
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return f"{where}: {exc.message}"
    return None


def _checked(spec: McpServerSpec, listed: list[Tool]) -> list[McpTool]:
    """The tools to offer: the allow-list's (each must be listed), each schema checked."""
    by_name = {t.name: t for t in listed}
    names = list(by_name) if spec.tools is None else spec.tools
    tools = []
    for name in names:
        tool = by_name.get(name)
        if tool is None:
            raise McpToolMissing(spec.name, name, sorted(by_name))
        problem = _schema_problem(tool.input_schema)
        if problem is not None:
            raise McpToolSchemaInvalid(spec.name, name, problem)
        tools.append(McpTool(spec.name, name, tool.description or "", dict(tool.input_schema)))
    return tools


def _leaf(exc: BaseException) -> BaseException:
    """The first error inside (nested) exception groups: what actually went wrong."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _unreachable(spec: McpServerSpec, exc: BaseException) -> Exception:
    """A connection failure as the error to raise: a Bend error as is (an egress refusal),
    anything else as McpServerUnreachable with its reason."""
    leaf = _leaf(exc)
    if isinstance(leaf, BendError):
        return leaf
    reason = f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__
    return McpServerUnreachable(spec.name, spec.where, reason[:300])


def _value(result: CallToolResult) -> Any:
    """A result as JSON: its structured content, else its text, else its content blocks."""
    if result.structured_content is not None:
        return result.structured_content
    blocks = result.content
    if all(isinstance(b, TextContent) for b in blocks):
        return "\n".join(b.text for b in blocks if isinstance(b, TextContent))
    return [b.model_dump(mode="json", by_alias=True, exclude_none=True) for b in blocks]


class McpConnection:
    """An open connection to one server, with its checked tools."""

    def __init__(self, spec: McpServerSpec, client: Client, tools: list[McpTool]) -> None:
        self.spec = spec
        self.tools = tools
        self._client = client

    async def call(self, tool: str, arguments: dict[str, Any]) -> McpCallResult:
        """Call `tool`; an error the server reports is the result's `error` (the model reads it),
        a broken connection raises McpServerUnreachable (a later attempt may pass)."""
        try:
            result = await self._client.call_tool(tool, arguments)
        except MCPError as exc:
            return McpCallResult(error=f"{tool} failed on MCP server {self.spec.name}: {exc}")
        except Exception as exc:
            raise _unreachable(self.spec, exc) from exc
        if result.is_error:
            text = _value(result)
            return McpCallResult(error=text if isinstance(text, str) and text else
                                 f"{tool} failed on MCP server {self.spec.name}")
        return McpCallResult(result=_value(result))


async def _listed(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(_LISTED_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


@asynccontextmanager
async def connect(spec: McpServerSpec, policy: EgressPolicy, *, timeout_s: float,
                  allow_stdio: bool = False) -> AsyncIterator[McpConnection]:
    """Connect to the server and list its tools; McpError subclasses say what went wrong."""
    timeout = spec.timeout_s or timeout_s
    if spec.command is not None:
        if not allow_stdio:
            raise McpStdioRefused(spec.name)
        server: Any = StdioServerParameters(command=spec.command, args=list(spec.args))
        http = None
    else:
        assert spec.url is not None  # a spec names a url or a command
        try:
            http = guarded_client(policy, spec.headers, timeout)
        except (ValueError, TypeError) as exc:  # a header value httpx2 cannot send
            raise _unreachable(spec, exc) from exc
        server = streamable_http_client(spec.url, http_client=http)
    client = Client(server, read_timeout_seconds=timeout, cache=None)
    try:
        try:
            await client.__aenter__()
        except Exception as exc:
            raise _unreachable(spec, exc) from exc
        try:
            try:
                listed = await _listed(client)
            except Exception as exc:
                raise _unreachable(spec, exc) from exc
            tools = _checked(spec, listed)
            log.info("mcp_server_listed", server=spec.name, tools=[t.name for t in tools])
            yield McpConnection(spec, client, tools)
        finally:
            try:
                await client.__aexit__(None, None, None)
            except Exception as exc:  # closing a broken connection: nothing left to do
                log.warning("mcp_server_close_failed", server=spec.name, error=repr(_leaf(exc)))
    finally:
        if http is not None:
            await http.aclose()
