"""`bend run WORKFLOW` and `bend runs list|show|events|cancel|signal|bulk`: runs through the REST
API."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from bend.api.logs import log_line
from bend.cli.approvals import json_option
from bend.cli.bulk import bulk
from bend.cli.client import ApiClient, CliError, ExitCode, api_command
from bend.cli.follow import follow_run
from bend.cli.output import Output, ago, duration, short_json, status_text, when
from bend.cli.timeline import progress, render_run
from bend.cli.workflows import load_document, resolve_workflow

__all__ = ["OUTCOME_EXIT", "TIMED_OUT_EXIT", "follow_run", "run", "runs"]

OUTCOME_EXIT = {"completed": 0, "failed": 1, "cancelled": ExitCode.REFUSED}
TIMED_OUT_EXIT = 124  # as timeout(1): the run was still going when --timeout passed
_STATUSES = ["queued", "pending", "running", "completed", "failed", "cancelled"]


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_input(input_file: str | None, sets: tuple[str, ...]) -> Any:
    """The run's input: the JSON/YAML of `input_file` (`-` is stdin), then each `key=value`."""
    value = load_document(input_file) if input_file else None
    if not sets:
        return {} if value is None else value
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise CliError("--set needs the input to be an object (a mapping)", ExitCode.USAGE)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set {item!r} is not KEY=VALUE", ExitCode.USAGE)
        *parents, leaf = key.split(".")
        target = value
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise CliError(f"--set {key}: {part} is not an object", ExitCode.USAGE)
        target[leaf] = _scalar(raw)
    return value


@click.command()
@click.argument("workflow")
@click.option("--input", "input_file", default=None, metavar="FILE|-",
              help="The input as JSON or YAML (`-` reads stdin).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set an input field (dots reach into objects); VALUE is JSON if it parses, "
                   "else text. Repeatable.")
@click.option("--idempotency-key", default=None, help="The same key always names the same run.")
@click.option("--version", type=click.IntRange(1), default=None, help="Default: the latest.")
@click.option("--wait", is_flag=True, help="Follow the run to its end and print its timeline.")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True,
              type=click.FloatRange(min=1), help="With --wait, the longest to wait, seconds.")
@api_command
def run(api: ApiClient, out: Output, workflow: str, input_file: str | None,
        sets: tuple[str, ...], idempotency_key: str | None, version: int | None, wait: bool,
        timeout_s: float) -> None:
    """Start a run of WORKFLOW (id or name).

    With --wait, exits 0 if the run completed, 1 if it failed, 4 if it was cancelled and 124
    if it was still running when --timeout passed.
    """
    body = {"input": build_input(input_file, sets), "idempotency_key": idempotency_key,
            "version": version}
    wf = resolve_workflow(api, workflow)
    accepted = api.post(f"/api/workflows/{wf['workflow_id']}/execute",
                        {k: v for k, v in body.items() if v is not None})
    run_id = accepted["run_id"]
    token = (accepted.get("position") or {}).get("token")
    if not wait:
        if out.json_mode:
            out.data(accepted)
        else:
            again = "" if accepted.get("position") else " (already started with this key)"
            out.line(f"run {run_id} of {wf['name']} {accepted['status']}{again}")
            out.note(f"follow it with `bend runs events {run_id} --follow`")
        return
    if not out.json_mode:
        out.note(f"run {run_id} of {wf['name']} started; following it")
    status = follow_run(api, run_id, timeout_s, wait_for=token,
                        on_event=None if out.json_mode else progress(out))
    detail = api.get(f"/api/executions/{run_id}")
    if out.json_mode:
        out.data(detail)
    else:
        out.line()
        render_run(out, detail, wf["name"])
    if status is None:
        if not out.json_mode:
            out.note(f"still {detail['status']} after {timeout_s:g}s; keep following with "
                     f"`bend runs events {run_id} --follow`")
        raise click.exceptions.Exit(TIMED_OUT_EXIT)
    raise click.exceptions.Exit(OUTCOME_EXIT.get(status, ExitCode.OTHER))


@click.group()
def runs() -> None:
    """List, inspect, follow, cancel and bulk-start runs."""


runs.add_command(bulk)


def parse_since(text: str) -> str:
    """`30m`, `2h`, `7d` ago, or an ISO time, as an ISO time for `?since=`."""
    match = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if match:
        size = {"s": 1, "m": 60, "h": 3600, "d": 86_400}[match[2]]
        return (datetime.now(timezone.utc) - timedelta(seconds=int(match[1]) * size)).isoformat()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--since {text!r} is neither like 30m, 2h, 7d nor an ISO time",
                       ExitCode.USAGE) from None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


@runs.command("list")
@click.option("--workflow", default=None, help="Only runs of this workflow (id or name).")
@click.option("--status", multiple=True, type=click.Choice(_STATUSES),
              help="Only these statuses (repeatable).")
@click.option("--since", default=None, help="Requested since: 30m, 2h, 7d or an ISO time.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--backtests", is_flag=True, help="Include backtest runs (left out by default).")
@click.option("--backtest", "backtest_id", default=None, metavar="ID",
              help="Only the runs of this backtest.")
@api_command
def list_(api: ApiClient, out: Output, workflow: str | None, status: tuple[str, ...],
          since: str | None, limit: int, backtests: bool, backtest_id: str | None) -> None:
    """List runs, newest first (backtest runs only with --backtests or --backtest)."""
    workflow_id = resolve_workflow(api, workflow, deleted=True)["workflow_id"] if workflow \
        else None
    page = api.get("/api/executions", workflow_id=workflow_id, status=list(status),
                   since=parse_since(since) if since else None, limit=limit,
                   backtests=backtests or None, backtest_id=backtest_id)
    if out.json_mode:
        out.data(page)
        return
    names = {w["workflow_id"]: w["name"] for w in api.get(
        "/api/workflows", status=["active", "paused", "deleted"], limit=200)["items"]}
    now = datetime.now(timezone.utc)
    out.table(["run", "workflow", "status", "requested", "duration", "error"],
              [[r["run_id"], names.get(r["workflow_id"], r["workflow_id"]),
                status_text(r["status"]), ago(r["requested_at"], now),
                duration(r.get("duration_ms")),
                short_json(r.get("error_message"), 40) if r.get("error_message") else "-"]
               for r in page["items"]], empty="no runs")


@runs.command()
@click.argument("run_id")
@api_command
def show(api: ApiClient, out: Output, run_id: str) -> None:
    """Show a run: its outcome, steps (status, attempts, duration), LLM usage and output."""
    detail = api.get(f"/api/executions/{run_id}")
    if out.json_mode:
        out.data(detail)
    else:
        wf = api.get(f"/api/workflows/{detail['workflow_id']}")
        render_run(out, detail, wf["name"])


@runs.command()
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Stream new events until the run ends.")
@click.option("--timeout", "timeout_s", default=3600.0, show_default=True,
              type=click.FloatRange(min=1), help="With --follow, the longest to follow, s.")
@api_command
def events(api: ApiClient, out: Output, run_id: str, follow: bool, timeout_s: float) -> None:
    """Print the run's events in order (--json: one JSON object per line)."""

    def show(event: dict[str, Any]) -> None:
        if out.json_mode:
            out.json_line(event)
            return
        line = log_line(event)
        step = line.step_id or "-"
        click.echo(f"{line.seq:>4}  {when(line.at)}  {line.event_type:<22} {step:<14} "
                   f"{line.message}")

    after = 0
    while True:  # the log so far, page by page
        page = api.get(f"/api/executions/{run_id}/events", after_seq=after, limit=1000)
        for event in page["items"]:
            show(event)
        if not page["items"]:
            break
        after = page["next_after_seq"]
    if follow and follow_run(api, run_id, timeout_s, after=after, on_event=show) is None:
        raise click.exceptions.Exit(TIMED_OUT_EXIT)


@runs.command()
@click.argument("run_id")
@click.option("--reason", default="", help="Why; recorded with the cancellation.")
@api_command
def cancel(api: ApiClient, out: Output, run_id: str, reason: str) -> None:
    """Cancel a run and its open steps."""
    accepted = api.post(f"/api/executions/{run_id}/cancel", {"reason": reason})
    if out.json_mode:
        out.data(accepted)
    else:
        out.line(f"cancel of run {run_id} requested; it shows cancelled once the orchestrator "
                 "has stopped it (`bend runs show`)")


@runs.command()
@click.argument("run_id")
@click.argument("name")
@json_option("--data", "The signal's payload, as JSON.")
@api_command
def signal(api: ApiClient, out: Output, run_id: str, name: str, data: Any) -> None:
    """Send RUN_ID the signal NAME (a wait step for NAME takes it, now or when it begins)."""
    sent = api.post(f"/api/executions/{run_id}/signals/{name}", data)
    if out.json_mode:
        out.data(sent)
    else:
        out.line(f"signal {name} sent to run {run_id}")


@runs.command()
@click.argument("run_id")
@api_command
def explain(api: ApiClient, out: Output, run_id: str) -> None:
    """Say why a run is not moving: timers, child runs, executors, lag, circuits, dead letters."""
    found = api.get(f"/api/executions/{run_id}/explain")
    if out.json_mode:
        out.data(found)
        return
    out.line(f"run {run_id} is {status_text(found['status'])} (partition {found['partition']})")
    for reason in found["reasons"]:
        until = f" [until {when(reason['until'])}]" if reason.get("until") else ""
        out.line(f"- {reason['kind']}{until}: {reason['message']}")
    for note in found.get("notes", []):
        out.note(note)
