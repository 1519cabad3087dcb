"""A run's log lines, rendered from its events: what happened, in words, with a level."""

from __future__ import annotations

from typing import Any

from bend.api.models.executions import LogLine

__all__ = ["LEVELS", "log_line"]

LEVELS = ("info", "warning", "error")

_ERROR = {"RunFailed", "StepFailed", "StepTimedOut", "DeadLettered"}
_WARNING = {"StepRetryScheduled", "RunCancelled", "StepCancelled", "StepSkipped"}


def _step(p: dict[str, Any]) -> str:
    return f"step {p.get('step_id')}"


def _message(kind: str, p: dict[str, Any]) -> str:
    match kind:
        case "RunRequested":
            via = f" by trigger {p['trigger_id']}" if p.get("trigger_id") else ""
            return f"run requested{via} (workflow version {p.get('workflow_version')})"
        case "RunStarted":
            return "run started"
        case "RunCompleted":
            return f"run completed in {p.get('duration_ms', 0)} ms"
        case "RunFailed":
            where = f" at step {p['step_id']}" if p.get("step_id") else ""
            return f"run failed{where}: {p.get('error_type')}: {p.get('message')}"
        case "RunCancelled":
            by = f" by {p['requested_by']}" if p.get("requested_by") else ""
            return f"run cancelled{by}: {p.get('reason') or 'no reason given'}"
        case "StepScheduled":
            return f"{_step(p)} ({p.get('node_type')}) scheduled, attempt {p.get('attempt')}"
        case "StepStarted":
            return f"{_step(p)} attempt {p.get('attempt')} started on {p.get('worker_id') or '?'}"
        case "StepSucceeded":
            return f"{_step(p)} attempt {p.get('attempt')} succeeded in {p.get('duration_ms')} ms"
        case "StepFailed":
            again = "will retry" if p.get("retryable") else "not retryable"
            return (f"{_step(p)} attempt {p.get('attempt')} failed ({again}): "
                    f"{p.get('error_type')}: {p.get('message')}")
        case "StepRetryScheduled":
            return (f"{_step(p)} retries as attempt {p.get('next_attempt')} in "
                    f"{p.get('delay_ms')} ms")
        case "StepTimedOut":
            return f"{_step(p)} attempt {p.get('attempt')} timed out after {p.get('timeout_ms')} ms"
        case "StepSkipped":
            return f"{_step(p)} skipped: {p.get('reason') or 'not needed'}"
        case "StepCancelled":
            return f"{_step(p)} cancelled: {p.get('reason') or 'run cancelled'}"
        case "TimerSet":
            return f"timer {p.get('purpose')} set for {p.get('fire_at')}"
        case "TimerFired":
            return f"timer {p.get('purpose')} fired"
        case "AgentLlmCallRecorded":
            fallback = f", fallback {p['fallback']}" if p.get("fallback") else ""
            return (f"{_step(p)} called {p.get('model')} ({p.get('prompt_tokens')} + "
                    f"{p.get('completion_tokens')} tokens, {p.get('latency_ms')} ms{fallback})")
        case "AgentToolCallRecorded":
            failed = f", failed: {p['error']}" if p.get("error") else ""
            return f"{_step(p)} called tool {p.get('tool_name')} ({p.get('latency_ms')} ms{failed})"
        case "ApprovalDecided":
            verdict = "approved" if p.get("approved") else "rejected"
            by = "by its timeout's default" if p.get("timed_out") else \
                f"by {p.get('decided_by') or '?'}"
            said = f": {p['comment']}" if p.get("comment") else ""
            return f"{_step(p)} {verdict} {by}{said}"
        case "SignalReceived":
            by = f" from {p['sent_by']}" if p.get("sent_by") else ""
            return f"signal {p.get('name')} received{by}"
        case "SignalDelivered":
            return f"{_step(p)} took signal {p.get('name')}"
    return kind


def log_line(event: dict[str, Any]) -> LogLine:
    """The log line of one `run_events` row (prompts and payload bodies are left out)."""
    kind = event["event_type"]
    level = "error" if kind in _ERROR else "warning" if kind in _WARNING else "info"
    return LogLine(seq=event["seq"], at=event["occurred_at"], level=level,
                   step_id=event["step_id"], event_type=kind,
                   message=_message(kind, event["payload"]))
