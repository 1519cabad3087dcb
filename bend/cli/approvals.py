"""`bend approvals list|approve|reject`: the approvals waiting in the project, through the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bend.cli.client import ApiClient, api_command
from bend.cli.output import Output, when

__all__ = ["approvals", "json_option"]

FC = TypeVar("FC", bound=Callable[..., Any])


def _json(_ctx: click.Context, _param: click.Parameter, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None


def json_option(name: str, help: str) -> Callable[[FC], FC]:
    """A `--NAME JSON` option parsed as JSON."""
    return click.option(name, default=None, metavar="JSON", callback=_json, help=help)



@click.group()
def approvals() -> None:
    """List the approvals waiting in the project; approve or reject one."""


@approvals.command("list")
@api_command
def list_(api: ApiClient, out: Output) -> None:
    """The approvals waiting for a decision, oldest first."""
    page = api.get("/api/approvals")
    if out.json_mode:
        out.data(page)
        return
    out.table(["RUN", "STEP", "WORKFLOW", "WAITING SINCE", "TIMEOUT AT", "YOURS", "MESSAGE"],
              [[a["run_id"], a["step_id"], a["workflow_id"], when(a["waiting_since"]),
                a["timeout_at"] or "-", "yes" if a["may_decide"] else "no", a["message"]]
               for a in page["items"]])


def _decide(api: ApiClient, out: Output, run_id: str, step_id: str, decision: str,
            comment: str, answer: Any) -> None:
    sent = api.post(f"/api/executions/{run_id}/approvals/{step_id}",
                    {"decision": decision, "comment": comment, "answer": answer})
    if out.json_mode:
        out.data(sent)
    else:
        out.line(f"{decision} of {step_id} in run {run_id} sent; the run goes on once the "
                 "orchestrator has decided it (`bend runs show`)")


@approvals.command()
@click.argument("run_id")
@click.argument("step_id")
@click.option("--comment", default="", help="Recorded with the decision.")
@json_option("--answer", "The fields the approval asks for (its answer_schema), as JSON.")
@api_command
def approve(api: ApiClient, out: Output, run_id: str, step_id: str, comment: str,
            answer: Any) -> None:
    """Approve the waiting approval STEP_ID of RUN_ID."""
    _decide(api, out, run_id, step_id, "approve", comment, answer)


@approvals.command()
@click.argument("run_id")
@click.argument("step_id")
@click.option("--comment", default="", help="Recorded with the decision.")
@api_command
def reject(api: ApiClient, out: Output, run_id: str, step_id: str, comment: str) -> None:
    """Reject the waiting approval STEP_ID of RUN_ID (the step fails)."""
    _decide(api, out, run_id, step_id, "reject", comment, None)
