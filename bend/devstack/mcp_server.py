"""A local MCP server for development and tests: a glossary whose `lookup` tool defines a term,
over streamable HTTP (`start_mcp_server()`, or `python -m bend.devstack.mcp_server --port P`)
or stdio (`--stdio`). It counts the calls it answers; `broken_schema=True` also lists a tool
whose input schema is not valid JSON Schema.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import Tool

from bend.devstack.llm_server import ServerHandle, serve_in_background

__all__ = ["GLOSSARY", "McpServerHandle", "McpState", "create_server", "start_mcp_server"]

GLOSSARY = {
    "event sourcing": "storing every change as an event and deriving state by folding them",
    "idempotency key": "a key that makes a repeated request take effect once",
    "durable execution": "running code so that it survives crashes by replaying its history",
    "mcp": "the Model Context Protocol: how a model's host offers it tools from servers",
}
BROKEN_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "text"}}}


@dataclass
class McpState:
    """The calls the server answered, by tool."""

    calls: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Every tool call answered."""
        return sum(self.calls.values())


class _Glossary(MCPServer):
    def __init__(self, state: McpState, broken_schema: bool) -> None:
        super().__init__("glossary", log_level="WARNING")
        self.state = state
        self.broken_schema = broken_schema

    async def list_tools(self) -> list[Tool]:
        tools = await super().list_tools()
        if self.broken_schema:  # a tool as a careless server might list it
            tools.append(Tool(name="broken", description="Lists a schema that is not valid.",
                              input_schema=BROKEN_SCHEMA))
        return tools


def create_server(state: McpState | None = None, *, broken_schema: bool = False) -> MCPServer:
    """The glossary server; `state` counts its calls."""
    state = state or McpState()
    server = _Glossary(state, broken_schema)

    @server.tool()
    def lookup(term: str) -> dict[str, str]:
        """Define a term of distributed systems and AI agents."""
        state.calls["lookup"] += 1
        found = GLOSSARY.get(term.strip().lower())
        return {"term": term, "definition": found or f"the glossary has no entry for {term!r}"}

    return server


@dataclass
class McpServerHandle(ServerHandle):
    """The glossary server running in a thread; `mcp_url` is its streamable HTTP endpoint."""

    state: McpState = field(default_factory=McpState)

    @property
    def mcp_url(self) -> str:
        """Where MCP clients connect."""
        return f"{self.url}/mcp"


def _bearer(app: Any, token: str) -> Any:
    """`app`, answering 401 to HTTP requests without `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


def start_mcp_server(port: int = 0, *, broken_schema: bool = False,
                     token: str | None = None) -> McpServerHandle:
    """Start the glossary server on 127.0.0.1 in-process; `.mcp_url`, `.state`, `.stop()`.
    With `token`, requests need `Authorization: Bearer <token>`."""
    state = McpState()
    app = create_server(state, broken_schema=broken_schema).streamable_http_app()
    if token is not None:
        app = _bearer(app, token)
    handle = serve_in_background(app, port, lifespan="on")
    return McpServerHandle(url=handle.url, port=handle.port,
                           _server=handle._server,  # noqa: SLF001 - the handle is handed over whole
                           _thread=handle._thread,  # noqa: SLF001
                           state=state)


def main(argv: list[str] | None = None) -> None:
    """`python -m bend.devstack.mcp_server [--port P | --stdio]`: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout")
    parser.add_argument("--broken-schema", action="store_true",
                        help="also list a tool whose input schema is not valid")
    args = parser.parse_args(argv)
    server = create_server(broken_schema=args.broken_schema)
    if args.stdio:
        server.run("stdio")
        return
    handle = start_mcp_server(args.port, broken_schema=args.broken_schema)
    print(f"MCP glossary at {handle.mcp_url}", flush=True)
    try:
        handle._thread.join()  # noqa: SLF001 - serve until interrupted
    except KeyboardInterrupt:
        handle.stop()


if __name__ == "__main__":
    main()
