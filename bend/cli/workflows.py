"""`bend workflows apply|list|show|export|activate|pause|delete`: workflows through the REST
API."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import yaml

from bend.cli.client import ApiClient, ApiFailure, CliError, ExitCode, api_command
from bend.cli.output import Output, status_text, when
from bend.core.definitions import definition_json
from bend.core.errors import BendError
from bend.sdk.load import is_python_target, load_workflow

__all__ = ["read_document", "resolve_workflow", "wait_visible", "workflows"]


def read_document(path: str) -> tuple[str, str]:
    """The text of `path` (`-` is stdin) and its media type (JSON for `.json`, else YAML)."""
    if path == "-":
        return sys.stdin.read(), "application/yaml"
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"cannot read {path}: {err}", ExitCode.USAGE) from None
    return text, "application/json" if file.suffix.lower() == ".json" else "application/yaml"


def read_python(target: str) -> tuple[str, str]:
    """The JSON text of the workflow a Python `target` builds (bend.sdk), as a document."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `pkg.module` of the project the command runs in
    try:
        definition = load_workflow(target)
    except BendError as err:
        raise CliError(err.message, ExitCode.USAGE) from None
    return json.dumps(definition_json(definition)), "application/json"


def load_document(path: str) -> Any:
    """The JSON or YAML value in `path` (`-` is stdin); a usage error says where it breaks."""
    text, _ = read_document(path)
    try:
        return yaml.safe_load(text)  # YAML reads JSON too
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CliError(f"{path} is not valid JSON or YAML{where}: "
                       f"{getattr(err, 'problem', None) or err}", ExitCode.USAGE) from None


def resolve_workflow(api: ApiClient, ref: str, *, deleted: bool = False) -> dict[str, Any]:
    """The workflow whose id, or else whose name, is `ref` (its detail, latest version)."""
    try:
        found: dict[str, Any] = api.get(f"/api/workflows/{quote(ref, safe='')}")
        return found
    except ApiFailure as err:
        if err.status != 404:
            raise
    statuses = ["active", "paused", "deleted"] if deleted else None
    page = api.get("/api/workflows", q=ref, status=statuses, limit=200)
    named = [w for w in page["items"] if w["name"] == ref]
    if not named:
        raise CliError(f"no workflow has the id or name {ref!r}; list them with "
                       "`bend workflows list`", ExitCode.NOT_FOUND)
    if len(named) > 1:
        ids = ", ".join(w["workflow_id"] for w in named)
        raise CliError(f"{len(named)} workflows are named {ref!r} ({ids}); pass one's id",
                       ExitCode.USAGE)
    detail: dict[str, Any] = api.get(f"/api/workflows/{named[0]['workflow_id']}")
    return detail


def wait_visible(api: ApiClient, written: dict[str, Any]) -> None:
    """Return once the read models show a write (its `position`), so the next command sees it."""
    position = written.get("position")
    if position:
        api.get("/api/workflows", limit=1, wait_for=position["token"])


@click.group()
def workflows() -> None:
    """Create, version, list, show, pause and delete workflows."""


@workflows.command()
@click.argument("file")
@click.option("--id", "workflow_id", default=None,
              help="Version this workflow (default: the one with the definition's name).")
@api_command
def apply(api: ApiClient, out: Output, file: str, workflow_id: str | None) -> None:
    """Create the workflow in FILE (YAML or JSON, or Python: `pkg.module:name` or
    `path/to/file.py[:name]`, a bend.sdk Workflow), or give it a new version.

    The workflow is found by --id, else by the definition's name; a new version is made only
    if the definition changed. An invalid definition lists every problem with its location.
    """
    text, media_type = read_python(file) if is_python_target(file) else read_document(file)
    name = _name_of(text)
    if workflow_id is None and name is not None:
        page = api.get("/api/workflows", q=name, limit=200)
        named = [w for w in page["items"] if w["name"] == name]
        if len(named) > 1:
            ids = ", ".join(w["workflow_id"] for w in named)
            raise CliError(f"{len(named)} workflows are named {name!r} ({ids}); pass --id",
                           ExitCode.USAGE)
        workflow_id = named[0]["workflow_id"] if named else None
    body = {"content": text.encode("utf-8"), "headers": {"Content-Type": media_type}}
    if workflow_id is None:
        written = api.post("/api/workflows", **body)
        verb = "created"
    else:
        written = api.put(f"/api/workflows/{quote(workflow_id, safe='')}", **body)
        verb = "updated" if written["changed"] else "unchanged"
    wait_visible(api, written)
    if out.json_mode:
        out.data({**written, "name": name, "action": verb})
        return
    label = (f"workflow {name} ({written['workflow_id']})" if name
             else f"workflow {written['workflow_id']}")
    if verb == "unchanged":
        out.line(f"{label} unchanged: version {written['version']} already has this definition")
    else:
        out.line(f"{verb} {label}, version {written['version']}")


def _name_of(text: str) -> str | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # the API lists the syntax problem with its location
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


@workflows.command("list")
@click.option("--search", "-q", default=None, help="Words in the name or description.")
@click.option("--status", multiple=True, type=click.Choice(["active", "paused", "deleted"]),
              help="Only these statuses (repeatable; deleted ones show only if asked).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@api_command
def list_(api: ApiClient, out: Output, search: str | None, status: tuple[str, ...],
          limit: int) -> None:
    """List workflows, newest first."""
    page = api.get("/api/workflows", q=search, status=list(status), limit=limit)
    if out.json_mode:
        out.data(page)
        return
    out.table(["id", "name", "status", "version", "updated"],
              [[w["workflow_id"], w["name"], status_text(w["status"]), w["latest_version"],
                when(w["updated_at"])] for w in page["items"]],
              empty="no workflows; create one with `bend workflows apply FILE`")
    if page.get("next_cursor"):
        out.note(f"(more than {limit}; raise --limit or narrow with --search)")


@workflows.command()
@click.argument("workflow")
@click.option("--version", type=click.IntRange(1), default=None, help="Default: the latest.")
@api_command
def show(api: ApiClient, out: Output, workflow: str, version: int | None) -> None:
    """Show WORKFLOW (id or name): status, versions and steps."""
    detail = resolve_workflow(api, workflow, deleted=True)
    if version is not None and version != detail["version"]:
        detail = api.get(f"/api/workflows/{detail['workflow_id']}", version=version)
    if out.json_mode:
        out.data(detail)
        return
    definition = detail["definition"]
    out.fields([("id", detail["workflow_id"]), ("name", detail["name"]),
                ("description", detail["description"]),
                ("status", status_text(detail["status"])),
                ("version", f"{detail['version']} of {detail['latest_version']}"),
                ("created", when(detail["created_at"])), ("updated", when(detail["updated_at"])),
                ("input", json.dumps(definition.get("input_schema"))
                 if definition.get("input_schema") else None)])
    out.line()
    out.table(["step", "type", "after", "uses"],
              [[s["id"], s["type"], ", ".join(s.get("after", [])) or "-", _uses(s)]
               for s in definition.get("steps", [])])
    out.line()
    out.table(["version", "hash", "created"],
              [[v["version"], v["definition_hash"][:12], when(v["created_at"])]
               for v in detail["versions"]])


@workflows.command()
@click.argument("workflow")
@click.option("--version", type=click.IntRange(1), default=None, help="Default: the latest.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="The document's format.")
@api_command
def export(api: ApiClient, out: Output, workflow: str, version: int | None, fmt: str) -> None:
    """Print WORKFLOW's (id or name) definition as a document `bend workflows apply` takes
    (a workflow written in Python comes out as its YAML or JSON form)."""
    detail = resolve_workflow(api, workflow, deleted=True)
    if version is not None and version != detail["version"]:
        detail = api.get(f"/api/workflows/{detail['workflow_id']}", version=version)
    definition = detail["definition"]
    if out.json_mode:
        out.data(definition)
    elif fmt == "json":
        out.line(json.dumps(definition, indent=2, ensure_ascii=False))
    else:
        out.line(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True).rstrip("\n"))


def _uses(step: dict[str, Any]) -> str:
    for key in ("component", "model", "workflow", "url", "duration"):
        if step.get(key):
            return str(step[key])
    return "-"


def _set_status(api: ApiClient, out: Output, workflow: str, action: str) -> None:
    wf = resolve_workflow(api, workflow)
    path = f"/api/workflows/{wf['workflow_id']}"
    if action == "delete":
        changed = api.delete(path)
    else:
        changed = api.post(f"{path}/{action}")
    wait_visible(api, changed)
    if out.json_mode:
        out.data(changed)
    elif changed["changed"]:
        out.line(f"workflow {wf['name']} ({wf['workflow_id']}) is now {changed['status']}")
    else:
        out.line(f"workflow {wf['name']} ({wf['workflow_id']}) was already {changed['status']}")


@workflows.command()
@click.argument("workflow")
@api_command
def activate(api: ApiClient, out: Output, workflow: str) -> None:
    """Let WORKFLOW's triggers start runs again."""
    _set_status(api, out, workflow, "activate")


@workflows.command()
@click.argument("workflow")
@api_command
def pause(api: ApiClient, out: Output, workflow: str) -> None:
    """Stop WORKFLOW's triggers from starting runs (`bend run` still starts them)."""
    _set_status(api, out, workflow, "pause")


@workflows.command()
@click.argument("workflow")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@api_command
def delete(api: ApiClient, out: Output, workflow: str, yes: bool) -> None:
    """Delete WORKFLOW; its runs and history stay readable."""
    if not yes:
        click.confirm(f"Delete workflow {workflow}?", abort=True, err=True)
    _set_status(api, out, workflow, "delete")
