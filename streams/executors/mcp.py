"""MCP tools for the agent executor: the step's servers are connected and their tools listed
when the attempt starts, offered to the model as `server__tool` beside the component tools, and
every call is recorded as a tool call (`mcp:server/tool`), so replay and fork read the log
instead of calling the server again.

A server named without `url` or `command` is the project's registered one. Header values name
secrets (`{{ secrets.NAME }}`), filled in here for the server's host only.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import structlog
from pydantic import ValidationError

from bend.core.events import StepScheduled
from bend.mcp import McpConnection, McpError, McpServerSpec, McpTool, connect
from streams.executors.context import ExecutionContext
from streams.executors.errors import InvalidStepInput, RetryableStepError, StepError
from streams.executors.outcome import Recorder
from streams.executors.secrets import fill_secrets, secret_names

__all__ = ["McpFailed", "McpRegistryUnavailable", "McpTools"]

log = structlog.get_logger(__name__)


class McpFailed(StepError):
    """An MCP server's tools could not be used; retryable as the MCP error says."""

    code = "mcp_failed"

    def __init__(self, error: McpError) -> None:
        super().__init__(error.message)
        self.retryable = error.retryable
        self._error_type = type(error).__name__
        self.server = error.server

    @property
    def error_type(self) -> str:
        """The MCP error's class name (e.g. `McpToolSchemaInvalid`)."""
        return self._error_type


class McpRegistryUnavailable(RetryableStepError):
    """The project's registered MCP servers could not be read; the step is retried."""

    code = "mcp_registry_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"the registered MCP servers could not be read ({detail}); the step is "
                         "retried, check that Postgres is up (BEND_DATABASE_URL)")


async def _spec(entry: Any, task: StepScheduled, ctx: ExecutionContext) -> McpServerSpec:
    """A `mcp_servers` entry as a connectable spec: registered servers looked up, secrets in."""
    if not isinstance(entry, dict):
        raise InvalidStepInput("agent", f"mcp_servers: {entry!r} is not an object")
    if not entry.get("url") and not entry.get("command"):
        try:
            registered = await ctx.mcp.registry.server(task.project, str(entry.get("name")))
        except McpError:
            raise
        except Exception as exc:  # a store outage is retried, never a permanent failure
            log.warning("mcp_registry_unreadable", error=repr(exc))
            raise McpRegistryUnavailable(type(exc).__name__) from exc
        entry = registered.spec(entry.get("tools"))
    try:
        spec = McpServerSpec.model_validate(entry)
    except ValidationError as exc:
        raise InvalidStepInput("agent", f"mcp_servers: {exc.errors()[0]['msg']}") from exc
    names = secret_names(spec.headers)
    if names:
        assert spec.url is not None  # headers go with a url (bend.core.nodes.McpServer)
        values = {n: (await ctx.secrets.secret(n, task.project)).for_url(spec.url)
                  for n in names}
        spec = spec.model_copy(update={"headers": fill_secrets(spec.headers, values)})
    return spec


class McpTools:
    """The MCP tools of one agent attempt, by the name the model calls them."""

    def __init__(self, connections: Iterable[McpConnection] = ()) -> None:
        self._tools: dict[str, tuple[McpConnection, McpTool]] = {}
        for conn in connections:
            for tool in conn.tools:
                if tool.model_name in self._tools:
                    raise InvalidStepInput("agent", f"mcp_servers: two tools are both offered "
                                           f"as {tool.model_name}; narrow a server's `tools`")
                self._tools[tool.model_name] = (conn, tool)

    @classmethod
    @asynccontextmanager
    async def open(cls, task: StepScheduled, ctx: ExecutionContext) -> AsyncIterator[McpTools]:
        """Connect the step's `mcp_servers` and list their tools, for the attempt's length."""
        entries = task.input.get("mcp_servers") if isinstance(task.input, dict) else None
        if not entries:
            yield cls()
            return
        try:
            async with AsyncExitStack() as stack:
                connections = []
                for entry in entries:
                    spec = await _spec(entry, task, ctx)
                    connections.append(await stack.enter_async_context(connect(
                        spec, ctx.mcp.policy, timeout_s=ctx.mcp.timeout_s,
                        allow_stdio=ctx.mcp.allow_stdio)))
                yield cls(connections)
        except McpError as exc:
            log.info("mcp_failed", server=exc.server, error_type=type(exc).__name__)
            raise McpFailed(exc) from exc

    @property
    def names(self) -> list[str]:
        """The names the model calls the tools by."""
        return list(self._tools)

    def described(self, taken: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The tools as OpenAI function tools; a name in `taken` (a component's) is refused."""
        clash = sorted(set(self._tools) & set(taken))
        if clash:
            raise InvalidStepInput("agent", f"tools: {', '.join(clash)} is both a component and "
                                            "an MCP tool; rename the server")
        return [{"type": "function", "function": {
            "name": name, "description": tool.description or f"{tool.name} ({tool.server})",
            "parameters": tool.input_schema}} for name, (_, tool) in self._tools.items()]

    def offers(self, call: dict[str, Any]) -> bool:
        """Whether the model's tool call names one of these tools."""
        return str((call.get("function") or {}).get("name", "")) in self._tools

    async def run(self, call: dict[str, Any], recorder: Recorder) -> str:
        """Call the tool and record it; what the model reads back (its result, or an error)."""
        function = call.get("function") or {}
        conn, tool = self._tools[str(function.get("name", ""))]
        raw = function.get("arguments") or "{}"
        started = time.perf_counter()
        try:
            arguments: Any = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            arguments = None
        result: Any = None
        if not isinstance(arguments, dict):
            error: str | None = f"the arguments of {tool.model_name} are not a JSON object: {raw!r}"
            arguments = raw
        else:
            try:
                answer = await conn.call(tool.name, arguments)
            except McpError as exc:
                recorder.tool_call(tool_call_id=str(call.get("id", "")), tool_name=tool.ref,
                                   arguments=arguments, result=None, error=exc.message,
                                   latency_ms=int((time.perf_counter() - started) * 1000))
                raise McpFailed(exc) from exc
            result, error = answer.result, answer.error
        recorder.tool_call(tool_call_id=str(call.get("id", "")), tool_name=tool.ref,
                           arguments=arguments, result=result, error=error,
                           latency_ms=int((time.perf_counter() - started) * 1000))
        return json.dumps({"error": error} if error is not None else result)
