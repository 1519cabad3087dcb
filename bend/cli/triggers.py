"""`bend triggers list|show|add|update|remove|errors|backfill|replay`: what starts a workflow's
runs, through the API."""

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
            url: str = trigger.get("webhook_url") or d.get("path", "-")
            return url
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
    out.table(["id", "type", "enabled", "fired", "errors", "last fired", "next due", "fires on",
               "error"],
              [[t["trigger_id"], t["type"], "yes" if t["enabled"] else "no",
                t["state"]["fire_count"], t["state"].get("error_count", 0),
                ago(t["state"]["last_fired_at"], now),
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
                ("last error", state["last_error"]),
                ("last error at", when(state["last_error_at"]) if state["last_error_at"] else None),
                ("errors", state.get("error_count", 0)), ("registered", when(t["registered_at"]))])
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


@triggers.command()
@click.argument("trigger_id")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@api_command
def errors(api: ApiClient, out: Output, trigger_id: str, limit: int) -> None:
    """List a trigger's latest failures (polls, records it could not read, runs it could not
    start), newest first."""
    page = api.get(f"/api/triggers/{quote(trigger_id, safe='')}/errors", limit=limit)
    if out.json_mode:
        out.data(page)
        return
    out.table(["when", "stage", "source", "error"],
              [[when(e["failed_at"]), e["stage"], e["source"] or "-", e["error"]]
               for e in page["items"]], empty="no failures recorded")


@triggers.command("backfill")
@click.argument("trigger_id")
@click.argument("start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z",
                                             "%Y-%m-%d %H:%M:%S%z"]))
@click.argument("end", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z",
                                           "%Y-%m-%d %H:%M:%S%z"]))
@click.option("--max-runs", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Refuse a range holding more due times than this.")
@api_command
def backfill_(api: ApiClient, out: Output, trigger_id: str, start: datetime, end: datetime,
              max_runs: int) -> None:
    """Fire schedule TRIGGER_ID's due times from START to END (ISO 8601 with an offset, e.g.
    2026-03-01T00:00:00+01:00; END excluded) that have not fired yet."""
    done = api.post(f"/api/triggers/{quote(trigger_id, safe='')}/backfill",
                    {"start": start.isoformat(), "end": end.isoformat(), "max_runs": max_runs})
    if out.json_mode:
        out.data(done)
        return
    out.table(["due", "run", "status"],
              [[when(r["due_at"]), r["run_id"], r["status"].replace("_", " ")]
               for r in done["runs"]], empty="no due times in that range")
    out.line(f"started {done['started']} runs; {done['already_fired']} had fired before")


@triggers.command()
@click.argument("trigger_id")
@click.option("--from-offset", type=click.IntRange(0), default=None,
              help="Re-read from this offset (of --partition, else of every partition).")
@click.option("--from-time", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
              default=None, help="Re-read the records written at or after this time.")
@click.option("--partition", type=click.IntRange(0), default=None)
@click.option("--force", is_flag=True,
              help="Fire records that fired before again (new runs); by default they start "
                   "nothing.")
@api_command
def replay(api: ApiClient, out: Output, trigger_id: str, from_offset: int | None,
           from_time: datetime | None, partition: int | None, force: bool) -> None:
    """Re-read Kafka trigger TRIGGER_ID's topic from an offset or a time."""
    if (from_offset is None) == (from_time is None):
        raise CliError("give one of --from-offset and --from-time", ExitCode.USAGE)
    body: dict[str, Any] = {"partition": partition, "force": force, "from_offset": from_offset,
                            "from_time": from_time.isoformat() if from_time else None}
    done = api.post(f"/api/triggers/{quote(trigger_id, safe='')}/replay", body)
    if out.json_mode:
        out.data(done)
        return
    start = f"offset {from_offset}" if from_offset is not None else f"{when(from_time)}"
    where = f"partition {partition}" if partition is not None else "every partition"
    out.line(f"replay {done['replay_id']} of trigger {trigger_id}: re-reading {where} from "
             f"{start}" + (" (forced: records fired before fire again)" if force else ""))
