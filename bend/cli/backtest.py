"""`bend backtest WORKFLOW --step STEP --prompt ...`: try a step's change on past runs, wait,
and print each run beside its original; `bend backtest show ID`, `bend backtest list`."""

from __future__ import annotations

import time
from typing import Any

import click

from bend.cli.client import ApiClient, ApiFailure, CliError, ExitCode, api_command
from bend.cli.output import Output, duration, short_json, when
from bend.cli.workflows import resolve_workflow
from bend.replay.fork import parse_assignment

__all__ = ["backtest"]


class _StartByDefault(click.Group):
    """A group whose unknown first word is the workflow of `start`: `bend backtest WF ...`."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_StartByDefault)
def backtest() -> None:
    """Try a step's changed prompt, model or parameters on past runs of its workflow.

    Each run is forked from the step with the change; the steps after it that are pure run
    again, the agent, tool and http steps reuse their recorded outputs (unless
    --live-downstream). `bend backtest WORKFLOW --step STEP --prompt TEXT` waits and prints
    each run beside its original.
    """


@backtest.command()
@click.argument("workflow")
@click.option("--step", "step_id", required=True, help="The step to change.")
@click.option("--prompt", default=None, help="The step's new prompt (a template).")
@click.option("--system-prompt", default=None, help="The step's new system prompt.")
@click.option("--model", default=None, help="The step's new model.")
@click.option("--temperature", type=float, default=None, help="The step's new temperature.")
@click.option("--change", "changes", multiple=True, metavar="FIELD=JSON",
              help="Any field of the step (value read as JSON, else text); repeatable.")
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID",
              help="A run to backtest (repeatable); else the filter chooses.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(["completed", "failed"]),
              help="Filter: runs that ended so (default completed).")
@click.option("--since", default=None, help="Filter: requested at or after (ISO 8601).")
@click.option("--until", default=None, help="Filter: requested before (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True,
              help="Filter: the newest runs, at most this many.")
@click.option("--live-downstream", is_flag=True,
              help="Call the agent, tool and http steps after the changed one for real.")
@click.option("--no-wait", is_flag=True, help="Print the backtest's id and return.")
@click.option("--timeout", "timeout_s", type=float, default=600, show_default=True,
              help="Longest to wait for its runs, s.")
@api_command
def start(api: ApiClient, out: Output, workflow: str, step_id: str, prompt: str | None,
          system_prompt: str | None, model: str | None, temperature: float | None,
          changes: tuple[str, ...], run_ids: tuple[str, ...], statuses: tuple[str, ...],
          since: str | None, until: str | None, limit: int, live_downstream: bool,
          no_wait: bool, timeout_s: float) -> None:
    """Backtest STEP of WORKFLOW (id or name) with a change, and print the comparison."""
    fields: dict[str, Any] = {}
    for text in changes:
        try:
            key, value = parse_assignment(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--change") from None
        fields[key] = value
    named = {"prompt": prompt, "system_prompt": system_prompt, "model": model,
             "temperature": temperature}
    fields.update({k: v for k, v in named.items() if v is not None})
    wf = resolve_workflow(api, workflow)
    body: dict[str, Any] = {"workflow_id": wf["workflow_id"], "step_id": step_id,
                            "changes": fields, "limit": limit,
                            "live_downstream": live_downstream}
    if run_ids:
        body["run_ids"] = list(run_ids)
    if statuses:
        body["status"] = list(statuses)
    body.update({k: v for k, v in (("since", since), ("until", until)) if v})
    started = api.post("/api/backtests", body)
    backtest_id = started["backtest_id"]
    if no_wait:
        if out.json_mode:
            out.data(started)
        else:
            out.line(backtest_id)
        return
    out.note(f"backtest {backtest_id}: {len(started['runs'])} runs forked from {step_id}; "
             "waiting for them")
    _print(out, _wait(api, backtest_id, timeout_s))


@backtest.command()
@click.argument("backtest_id")
@click.option("--wait", "wait_s", type=float, default=0,
              help="Wait up to this many seconds for its runs to finish.")
@api_command
def show(api: ApiClient, out: Output, backtest_id: str, wait_s: float) -> None:
    """Each run of backtest BACKTEST_ID beside its original, and the aggregate."""
    _print(out, _wait(api, backtest_id, wait_s) if wait_s else
           api.get(f"/api/backtests/{backtest_id}"))


@backtest.command("list")
@click.option("--workflow", "workflow_id", default=None, help="Only this workflow's (id).")
@api_command
def list_(api: ApiClient, out: Output, workflow_id: str | None) -> None:
    """The project's backtests, newest first."""
    page = api.get("/api/backtests", workflow_id=workflow_id)
    if out.json_mode:
        out.data(page)
        return
    out.table(["BACKTEST", "WORKFLOW", "STEP", "RUNS", "FINISHED", "REQUESTED", "CHANGES"],
              [[b["backtest_id"], b["workflow_id"], b["step_id"], b["runs"],
                b["finished_runs"], when(b["requested_at"]), short_json(b["changes"])]
               for b in page["items"]])


def _wait(api: ApiClient, backtest_id: str, timeout_s: float) -> dict[str, Any]:
    """The backtest once every run finished (or as it stands when `timeout_s` ran out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found: dict[str, Any] = api.get(f"/api/backtests/{backtest_id}")
        except ApiFailure as err:  # not projected yet
            if err.status != 404 or time.monotonic() > deadline:
                raise
            found = {}
        if found.get("finished"):
            return found
        if found and time.monotonic() > deadline:
            raise CliError(f"backtest {backtest_id} has runs still going after {timeout_s:g} s; "
                           f"see `bend backtest show {backtest_id}`", ExitCode.OTHER)
        time.sleep(0.5)


def _print(out: Output, found: dict[str, Any]) -> None:
    if out.json_mode:
        out.data(found)
        return
    s = found["summary"]
    out.line(f"backtest {found['backtest_id']} of {found['workflow_id']}, step "
             f"{found['step_id']} changed {short_json(found['changes'])}"
             + (" (downstream live)" if found["live_downstream"] else ""))
    out.table(["SOURCE RUN", "BACKTEST RUN", "VERDICT", "TOKENS", "COST $", "STEP TIME",
               "DIFFERENCE"], [_row(c) for c in found["runs"]])
    out.line(f"{s['runs']} runs: {s['changed']} changed, {s['unchanged']} unchanged, "
             f"{s['failed']} failed, {s['pending']} pending; tokens {s['tokens_original']} -> "
             f"{s['tokens_backtest']} ({s['tokens_delta']:+d}), cost "
             f"${s['cost_original_usd']:.6f} -> ${s['cost_backtest_usd']:.6f} "
             f"({s['cost_delta_usd']:+.6f}), step time {s['step_latency_delta_ms']:+d} ms")


def _row(c: dict[str, Any]) -> list[Any]:
    o, b = c["original"], c["backtest"] or {}
    tokens = f"{o['prompt_tokens'] + o['completion_tokens']} -> " + (
        f"{b['prompt_tokens'] + b['completion_tokens']}" if b else "-")
    cost = f"{o['cost_usd']:.6f} -> " + (f"{b['cost_usd']:.6f}" if b else "-")
    took = f"{duration(o['step_duration_ms'])} -> {duration(b.get('step_duration_ms'))}"
    if c["verdict"] == "failed":
        diff = f"{b.get('error_type')}: {b.get('error_message')}"
    else:
        diff = "; ".join(c["output_diff"] or c["step_diff"])
    return [c["source_run_id"], c["run_id"], c["verdict"], tokens, cost, took,
            diff[:120] if diff else "-"]
