"""`bend triggers list|show|add|update|remove`: what starts a workflow's runs, through the API."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import click

from bend.cli.client import ApiClient, CliError, ExitCode, api_command
from bend.cli.output import Output, ago, short_json, when
from bend.cli.workflows import load_document, resolve_workflow, wait_visible

__all__ = ["triggers"]


def _body(file: str, enabled: bool | None) -> dict[str, Any]:
    """The request body from FILE: a trigger definition (with `type`), or
    `{definition: ..., enabled: ...}`; `enabled` (a flag) wins over the file's."""
    doc = load_document(file)
    if not isinstance(doc, dict):
        raise CliError(f"{file} must hold a trigger definition (a mapping with `type`)",
                       ExitCode.USAGE)
    body = dict(doc) if "definition" in doc else {"definition": doc}
    if enabled is not None:
        body["enabled"] = enabled
    return body


def _what(trigger: dict[str, Any]) -> str:
    """One phrase of what fires the trigger."""
    d = trigger["definition"]
    match trigger["type"]:
        case "schedule":
            return short_json(d.get("schedule"), 50)
        case "webhook":
            return trigger.get("webhook_url") or d.get("path", "-")
        case "kafka":
            return f"topic {d.get('topic', '?')}"
        case "polling":
            return f"{d.get('url', '?')} every {d.get('interval', '?')}"
    return "-"


@click.group()
def triggers() -> None:
    """List, add, change and remove the triggers that start a workflow's runs."""


@triggers.command("list")
@click.argument("workflow")
@api_command
def list_(api: ApiClient, out: Output, workflow: str) -> None:
    """List WORKFLOW's (id or name) triggers with when they fired and will fire."""
    wf = resolve_workflow(api, workflow, deleted=True)
    page = api.get(f"/api/workflows/{wf['workflow_id']}/triggers")
    if out.json_mode:
        out.data(page)
        return
    now = datetime.now(timezone.utc)
    out.table(["id", "type", "enabled", "fired", "last fired", "next due", "fires on", "error"],
              [[t["trigger_id"], t["type"], "yes" if t["enabled"] else "no",
                t["state"]["fire_count"], ago(t["state"]["last_fired_at"], now),
                when(t["state"]["next_due_at"]), _what(t),
                short_json(t["state"]["last_error"], 40) if t["state"]["last_error"] else "-"]
               for t in page["items"]],
              empty=f"no triggers; add one with `bend triggers add {workflow} FILE`")


@triggers.command()
@click.argument("trigger_id")
@api_command
def show(api: ApiClient, out: Output, trigger_id: str) -> None:
    """Show a trigger: its definition and state."""
    t = api.get(f"/api/triggers/{quote(trigger_id, safe='')}")
    if out.json_mode:
        out.data(t)
        return
    state = t["state"]
    out.fields([("trigger", t["trigger_id"]), ("workflow", t["workflow_id"]), ("type", t["type"]),
                ("enabled", "yes" if t["enabled"] else "no"), ("webhook url", t["webhook_url"]),
                ("fired", state["fire_count"]), ("last fired", when(state["last_fired_at"])),
                ("next due", when(state["next_due_at"]) if state["next_due_at"] else None),
                ("last error", state["last_error"]), ("registered", when(t["registered_at"]))])
    out.line("definition:")
    out.line(json.dumps(t["definition"], indent=2, ensure_ascii=False))


def _written(out: Output, written: dict[str, Any], verb: str) -> None:
    if out.json_mode:
        out.data(written)
        return
    state = "enabled" if written["enabled"] else "disabled"
    if not written["changed"]:
        out.line(f"trigger {written['trigger_id']} unchanged")
        return
    out.line(f"{verb} {written['type']} trigger {written['trigger_id']} ({state})")
    if written.get("webhook_url"):
        out.line(f"send deliveries to {written['webhook_url']}")


_ENABLED = click.option("--enable/--disable", "enabled", default=None,
                        help="Whether it fires (default: the file's `enabled`, else as it is).")


@triggers.command()
@click.argument("workflow")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@_ENABLED
@api_command
def add(api: ApiClient, out: Output, workflow: str, file: str, enabled: bool | None) -> None:
    """Add the trigger defined in FILE (YAML or JSON) to WORKFLOW (id or name).

    FILE holds e.g. `{type: schedule, schedule: {cron: "0 9 * * 1-5", timezone: Europe/Paris}}`;
    an invalid definition lists every problem.
    """
    wf = resolve_workflow(api, workflow)
    written = api.post(f"/api/workflows/{wf['workflow_id']}/triggers", _body(file, enabled))
    wait_visible(api, written)
    _written(out, written, "added")


@triggers.command()
@click.argument("trigger_id")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@_ENABLED
@api_command
def update(api: ApiClient, out: Output, trigger_id: str, file: str,
           enabled: bool | None) -> None:
    """Replace the definition of trigger TRIGGER_ID with FILE's."""
    path = f"/api/triggers/{quote(trigger_id, safe='')}"
    body = _body(file, enabled)
    if "enabled" not in body:
        body["enabled"] = api.get(path)["enabled"]  # keep it firing (or not) as it was
    written = api.put(path, body)
    wait_visible(api, written)
    _written(out, written, "updated")


@triggers.command()
@click.argument("trigger_id")
@api_command
def remove(api: ApiClient, out: Output, trigger_id: str) -> None:
    """Remove a trigger; it fires no more (its firings stay in the history)."""
    written = api.delete(f"/api/triggers/{quote(trigger_id, safe='')}")
    wait_visible(api, written)
    if out.json_mode:
        out.data(written)
    else:
        out.line(f"removed {written['type']} trigger {written['trigger_id']}")
