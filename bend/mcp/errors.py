"""Why an MCP server's tools cannot be used: each error names the server (and tool) and what
to do. `retryable` says whether a later attempt may pass (a server that did not answer)."""

from __future__ import annotations

from bend.core.errors import BendError

__all__ = [
    "McpError", "McpSecretRefused", "McpServerUnreachable", "McpStdioRefused", "McpToolMissing",
    "McpToolSchemaInvalid", "UnknownMcpServer",
]


class McpError(BendError):
    """Root of the MCP errors; the API answers them with 422 unless they say otherwise."""

    code = "mcp_error"
    status = 422
    retryable = False

    def __init__(self, server: str, message: str) -> None:
        super().__init__(message)
        self.server = server


class McpServerUnreachable(McpError):
    """The server did not answer, or broke off, while being connected to, listed or called."""

    code = "mcp_server_unreachable"
    retryable = True

    def __init__(self, server: str, where: str, reason: str) -> None:
        super().__init__(server, f"MCP server {server!r} ({where}) did not answer: {reason}; "
                                 "check that it is up and that its URL or command is right")
        self.reason = reason


class McpToolSchemaInvalid(McpError):
    """The server lists a tool whose input schema is not a valid JSON Schema object."""

    code = "mcp_tool_schema_invalid"

    def __init__(self, server: str, tool: str, reason: str) -> None:
        super().__init__(server, f"MCP server {server!r} lists tool {tool!r} whose input schema "
                                 f"is not valid JSON Schema: {reason}; fix the tool on the "
                                 "server, or leave it out with the server's `tools` allow-list")
        self.tool = tool


class McpToolMissing(McpError):
    """The allow-list names a tool the server does not list."""

    code = "mcp_tool_missing"

    def __init__(self, server: str, tool: str, listed: list[str]) -> None:
        super().__init__(server, f"MCP server {server!r} lists no tool {tool!r} (it lists: "
                                 f"{', '.join(listed) or 'none'}); fix the `tools` allow-list")
        self.tool = tool


class McpStdioRefused(McpError):
    """A definition names a command to run, on executors that do not run commands."""

    code = "mcp_stdio_refused"

    def __init__(self, server: str) -> None:
        super().__init__(server, f"MCP server {server!r} is a command (stdio), which these "
                                 "executors do not run: stdio servers are for local development "
                                 "(BEND_MCP__ALLOW_STDIO=true); give it a `url` (streamable "
                                 "HTTP) instead")


class UnknownMcpServer(McpError):
    """A definition names an MCP server its project has not registered."""

    code = "unknown_mcp_server"
    status = 404

    def __init__(self, server: str) -> None:
        super().__init__(server, f"MCP server {server!r} is not registered for this project; "
                                 f"register it with PUT /api/mcp-servers/{server} (`bend mcp "
                                 "add`), or give its `url` in the definition")


class McpSecretRefused(McpError):
    """A header names a secret that may not be sent to the server's host, or is not set."""

    code = "mcp_secret_refused"

    def __init__(self, server: str, name: str, why: str) -> None:
        super().__init__(server, f"MCP server {server!r}: secret {name!r} {why}; set it, or add "
                                 f"the host to its allowed_hosts, with PUT /api/secrets/{name}")
        self.name = name
