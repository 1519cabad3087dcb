"""Each client operation as a request and a parser of its answer, shared by both clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from bend.client.models import Event, Forked, Run, RunSummary, Sent, Started, Workflow
from bend.client.protocol import Call, position_of, post

__all__ = [
    "Op", "approval", "cancel", "create_workflow", "events_page", "fork", "get", "list_page",
    "replay", "signal", "start", "update_workflow",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """A request and what its JSON answer becomes."""

    call: Call
    parse: Callable[[Any], T]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _definition_call(method: str, path: str, definition: dict[str, Any] | str) -> Call:
    if isinstance(definition, str):  # YAML or JSON text, sent as it is
        return Call(method, path, {}, None, headers={"Content-Type": "application/yaml"},
                    content=definition.encode())
    return Call(method, path, {}, definition, has_body=True)


def create_workflow(definition: dict[str, Any] | str) -> Op[Workflow]:
    """POST /api/workflows."""
    return Op(_definition_call("POST", "/api/workflows", definition),
              lambda body: Workflow.model_validate(position_of(body)))


def update_workflow(workflow_id: str, definition: dict[str, Any] | str) -> Op[Workflow]:
    """PUT /api/workflows/{workflow_id}."""
    return Op(_definition_call("PUT", f"/api/workflows/{_seg(workflow_id)}", definition),
              lambda body: Workflow.model_validate(position_of(body)))


def start(workflow_id: str, input: Any, idempotency_key: str | None, version: int | None,
          wait_for: str | None) -> Op[Started]:
    """POST /api/workflows/{workflow_id}/execute, always with an idempotency key (a new one if
    none is given), so that sending it again after a 503 cannot start a second run."""
    body: dict[str, Any] = {"input": input,
                            "idempotency_key": idempotency_key or str(uuid.uuid4())}
    if version is not None:
        body["version"] = version
    return Op(post(f"/api/workflows/{_seg(workflow_id)}/execute", body, wait_for=wait_for),
              lambda answer: Started.model_validate(position_of(answer)))


def get(run_id: str, wait_for: str | None) -> Op[Run]:
    """GET /api/executions/{run_id}."""
    return Op(Call("GET", f"/api/executions/{_seg(run_id)}", {"wait_for": wait_for}),
              Run.model_validate)


def _page(body: Any) -> tuple[list[RunSummary], str | None]:
    return [RunSummary.model_validate(i) for i in body["items"]], body.get("next_cursor")


def list_page(workflow_id: str | None, status: str | Iterable[str] | None,
              since: datetime | None, until: datetime | None, limit: int,
              cursor: str | None) -> Op[tuple[list[RunSummary], str | None]]:
    """GET /api/executions: one page and the next page's cursor."""
    statuses = [status] if isinstance(status, str) else list(status or [])
    return Op(Call("GET", "/api/executions", {
        "workflow_id": workflow_id, "status": statuses, "since": since, "until": until,
        "limit": limit, "cursor": cursor}), _page)


def _events(body: Any) -> tuple[list[Event], int]:
    return [Event.model_validate(i) for i in body["items"]], int(body["next_after_seq"])


def events_page(run_id: str, after_seq: int, wait_for: str | None,
                limit: int = 500) -> Op[tuple[list[Event], int]]:
    """GET /api/executions/{run_id}/events: events after `after_seq` and the last seq read."""
    return Op(Call("GET", f"/api/executions/{_seg(run_id)}/events",
                   {"after_seq": after_seq, "limit": limit, "wait_for": wait_for}), _events)


def follow_call(run_id: str, after_seq: int, follow_s: float, wait_for: str | None) -> Call:
    """GET /api/executions/{run_id}/events?follow=true (server-sent events)."""
    return Call("GET", f"/api/executions/{_seg(run_id)}/events",
                {"follow": "true", "after_seq": after_seq, "follow_s": follow_s,
                 "wait_for": wait_for},
                headers={"Accept": "text/event-stream"})


def _sent(body: Any) -> Sent:
    return Sent.model_validate(position_of(body))


def cancel(run_id: str, reason: str) -> Op[Sent]:
    """POST /api/executions/{run_id}/cancel."""
    return Op(post(f"/api/executions/{_seg(run_id)}/cancel", {"reason": reason}), _sent)


def fork(run_id: str, from_step: str, input: Any, set: dict[str, Any] | None) -> Op[Forked]:
    """POST /api/executions/{run_id}/fork."""
    return Op(post(f"/api/executions/{_seg(run_id)}/fork",
                   {"from_step": from_step, "input": input, "set": set or {}}),
              Forked.model_validate)


def replay(run_id: str) -> Op[dict[str, Any]]:
    """GET /api/executions/{run_id}/replay: the fold of the run's events and its differences
    from the read model."""
    return Op(Call("GET", f"/api/executions/{_seg(run_id)}/replay"), dict)


def signal(run_id: str, name: str, payload: Any) -> Op[Sent]:
    """POST /api/executions/{run_id}/signals/{name} with `payload` as the body."""
    return Op(post(f"/api/executions/{_seg(run_id)}/signals/{_seg(name)}", payload), _sent)


def approval(run_id: str, step_id: str, approve: bool, comment: str, answer: Any) -> Op[Sent]:
    """POST /api/executions/{run_id}/approvals/{step_id}."""
    body = {"decision": "approve" if approve else "reject", "comment": comment,
            "answer": answer}
    return Op(post(f"/api/executions/{_seg(run_id)}/approvals/{_seg(step_id)}", body), _sent)
