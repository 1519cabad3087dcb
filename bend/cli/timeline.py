"""How a run reads for people: its outcome, a timeline of its steps, and progress lines."""

from __future__ import annotations

import json
from typing import Any

from bend.api.logs import log_line
from bend.cli.output import Output, clock, duration, short_json, status_text, when

__all__ = ["progress", "render_run"]

# What `run --wait` shows as the run goes: outcomes, not the engine's bookkeeping.
_PROGRESS = frozenset({"RunStarted", "StepSucceeded", "StepFailed", "StepRetryScheduled",
                       "StepTimedOut", "StepSkipped", "StepCancelled", "AgentLlmCallRecorded",
                       "AgentToolCallRecorded", "RunCompleted", "RunFailed", "RunCancelled"})


def progress(out: Output) -> Any:
    """A callback printing a run's events that matter to people, to stderr."""

    def show(event: dict[str, Any]) -> None:
        kind = event["event_type"]
        delay = kind in ("TimerSet", "TimerFired") and event["payload"].get("purpose") == "delay"
        if kind in _PROGRESS or delay:
            line = log_line(event)
            out.note(f"  {clock(line.at)}  {line.message}")

    return show


def render_run(out: Output, run: dict[str, Any], workflow_name: str | None = None) -> None:
    """A run for people: its outcome, a timeline of its steps, LLM usage and output."""
    named = f"{workflow_name} ({run['workflow_id']})" if workflow_name else run["workflow_id"]
    out.fields([("run", run["run_id"]),
                ("workflow", f"{named}, version {run['workflow_version']}"),
                ("status", status_text(run["status"])), ("requested", when(run["requested_at"])),
                ("finished", when(run["finished_at"]) if run.get("finished_at") else None),
                ("duration", duration(run.get("duration_ms")) if run.get("duration_ms")
                 is not None else None),
                ("idempotency key", run.get("idempotency_key")),
                ("trigger", run.get("trigger_id"))])
    out.line()
    # Queued and run time as the API gives them (bend.core.timing: the UI and replay agree).
    out.table(["step", "type", "status", "attempts", "queued", "ran", "began", "note"],
              [[s["step_id"], s["node_type"], status_text(s["status"]), s["attempts"],
                duration(s.get("queued_ms")), duration(s.get("duration_ms")),
                clock(s.get("started_at") or s.get("scheduled_at")),
                short_json(_note(s), 50) if _note(s) else "-"] for s in run["steps"]],
              empty="(no steps yet)")
    if run.get("usage"):
        out.line()
        out.table(["model", "calls", "prompt tokens", "completion tokens", "latency"],
                  [[u["model"], u["calls"], u["prompt_tokens"], u["completion_tokens"],
                    duration(u["latency_ms"])] for u in run["usage"]])
    out.line()
    match run["status"]:
        case "completed":
            out.line(f"run completed in {duration(run.get('duration_ms'))}; output:",
                     fg="green")
            out.line(json.dumps(run.get("output"), indent=2, ensure_ascii=False))
        case "failed":
            where = f" at step {run['failed_step_id']}" if run.get("failed_step_id") else ""
            out.line(f"run failed{where}: {run.get('error_type')}: {run.get('error_message')}",
                     fg="red")
        case "cancelled":
            out.line(f"run cancelled: {run.get('cancel_reason') or 'no reason given'}",
                     fg="yellow")
        case status:
            out.line(f"run is {status}")


def _note(step: dict[str, Any]) -> str | None:
    if step.get("error_type"):
        return f"{step['error_type']}: {step.get('error_message') or ''}"
    return step.get("reason")
