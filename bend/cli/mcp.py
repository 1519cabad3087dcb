"""`bend mcp list|add|remove`: the project's MCP servers, whose tools agents may take."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from bend.cli.client import ApiClient, CliError, ExitCode, api_command
from bend.cli.output import Output

__all__ = ["mcp"]


@click.group()
def mcp() -> None:
    """Register MCP servers; agents name them in `mcp_servers`."""


@mcp.command("list")
@api_command
def list_(api: ApiClient, out: Output) -> None:
    """The project's MCP servers."""
    page = api.get("/api/mcp-servers")
    if out.json_mode:
        out.data(page)
        return
    out.table(["name", "url", "tools", "headers"],
              [[s["name"], s["url"], ", ".join(s["tools"]) if s["tools"] is not None else "all",
                ", ".join(s["header_names"]) or "-"] for s in page["items"]],
              empty="no MCP servers; register one with `bend mcp add NAME URL`")


def _headers(values: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise CliError(f"--header {value!r} is not NAME: VALUE", ExitCode.USAGE)
        headers[name.strip()] = text.strip()
    return headers


@mcp.command()
@click.argument("name")
@click.argument("url")
@click.option("--header", "-H", multiple=True,
              help="NAME: VALUE, repeatable; name credentials as '{{ secrets.NAME }}'.")
@click.option("--tool", "tools", multiple=True, help="Offer only this tool (repeatable).")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Seconds per request.")
@api_command
def add(api: ApiClient, out: Output, name: str, url: str, header: tuple[str, ...],
        tools: tuple[str, ...], timeout_s: float | None) -> None:
    """Register (or replace) server NAME at URL (streamable HTTP); it must answer now."""
    body: dict[str, Any] = {"url": url, "headers": _headers(header),
                            "tools": list(tools) or None, "timeout_s": timeout_s}
    server = api.put(f"/api/mcp-servers/{quote(name, safe='')}", body)
    if out.json_mode:
        out.data(server)
        return
    listed = server.get("listed") or []
    out.line(f"registered {server['name']} at {server['url']}: {len(listed)} tools")
    out.table(["tool", "the model calls it", "description"],
              [[t["name"], t["model_name"], t["description"]] for t in listed],
              empty="(no tools)")


@mcp.command()
@click.argument("name")
@api_command
def remove(api: ApiClient, out: Output, name: str) -> None:
    """Forget server NAME."""
    api.delete(f"/api/mcp-servers/{quote(name, safe='')}")
    if out.json_mode:
        out.data({"removed": name})
        return
    out.line(f"removed {name}")
