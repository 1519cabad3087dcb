"""`bend components list|show|register`: the component catalogue through the REST API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from bend.cli.client import ApiClient, CliError, ExitCode, api_command
from bend.cli.output import Output, when
from bend.cli.workflows import load_document

__all__ = ["components"]


@click.group()
def components() -> None:
    """List, show and register components (the tools that workflow steps call)."""


@components.command("list")
@click.option("--search", "-q", default=None, help="Words in the name or description.")
@click.option("--tag", multiple=True, help="Only components with this tag (repeatable).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 500))
@api_command
def list_(api: ApiClient, out: Output, search: str | None, tag: tuple[str, ...],
          limit: int) -> None:
    """List components by name, with their versions."""
    page = api.get("/api/components", q=search, tag=list(tag), limit=limit)
    if out.json_mode:
        out.data(page)
        return
    out.table(["name", "latest", "versions", "tags", "description"],
              [[c["name"], c["latest_version"], ", ".join(c["versions"]),
                ", ".join(c["tags"]) or "-", c["description"]] for c in page["items"]],
              empty="no components match")


def _schema_lines(schema: dict[str, Any] | None) -> list[str]:
    """One line per property of an object schema: `name: type (required)  description`."""
    if not schema:
        return ["(any)"]
    props = schema.get("properties") or {}
    if not props:
        return [json.dumps(schema)]
    required = set(schema.get("required") or [])
    width = max(len(n) for n in props)
    lines = []
    for name, spec in props.items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        need = " (required)" if name in required else ""
        about = spec.get("description", "") if isinstance(spec, dict) else ""
        lines.append(f"{name:<{width}}  {kind}{need}{'  ' + about if about else ''}")
    return lines


@components.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@api_command
def show(api: ApiClient, out: Output, ref: str) -> None:
    """Show a component version (the newest without @VERSION) and its schemas."""
    name, _, version = ref.partition("@")
    if not name:
        raise CliError(f"{ref!r} is not NAME or NAME@VERSION", ExitCode.USAGE)
    detail = api.get(f"/api/components/{quote(name, safe='')}")
    versions = [v["version"] for v in detail["versions"]]
    if version:
        comp = api.get(f"/api/components/{quote(name, safe='')}/{quote(version, safe='')}")
    else:
        comp = detail["versions"][-1]
    if out.json_mode:
        out.data(comp)
        return
    out.fields([("component", comp["ref"]), ("description", comp["description"]),
                ("tags", ", ".join(comp["tags"])), ("versions", ", ".join(versions)),
                ("registered", f"{when(comp['registered_at'])} by {comp['registered_by']}")])
    out.line()
    out.line("inputs:")
    for line in _schema_lines(comp["input_schema"]):
        out.line(f"  {line}")
    out.line("output:")
    for line in _schema_lines(comp["output_schema"]):
        out.line(f"  {line}")


@components.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@api_command
def register(api: ApiClient, out: Output, file: str) -> None:
    """Register the component version in FILE (YAML or JSON: name, version, description, tags,
    input_schema, output_schema). Versions are immutable: a change needs a new version."""
    body = load_document(file)
    if not isinstance(body, dict):
        raise CliError(f"{file} must hold a mapping with name, version, input_schema, ...",
                       ExitCode.USAGE)
    written = api.post("/api/components", body)
    if out.json_mode:
        out.data(written)
    elif written["changed"]:
        out.line(f"registered component {written['ref']}")
    else:
        out.line(f"component {written['ref']} unchanged: it is registered with this body")
