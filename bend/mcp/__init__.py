"""Tools from MCP servers: connecting (streamable HTTP through the egress policy, or stdio),
listing and checking tools, calling them, and the project registry of servers."""

from bend.mcp.errors import (
    McpError, McpServerUnreachable, McpStdioRefused, McpToolMissing, McpToolSchemaInvalid,
    UnknownMcpServer,
)
from bend.mcp.session import McpCallResult, McpConnection, McpServerSpec, McpTool, connect

__all__ = [
    "McpCallResult", "McpConnection", "McpError", "McpServerSpec", "McpServerUnreachable",
    "McpStdioRefused", "McpTool", "McpToolMissing", "McpToolSchemaInvalid", "UnknownMcpServer",
    "connect",
]
