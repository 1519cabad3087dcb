"""Notifications a workflow asks for: on which run events, to which webhook or mailbox.

`notifications` in a definition lists them; `planned(event, definition)` says which deliveries
one event of a run owes, each with a delivery id derived from the event's id and the
notification's place, so a redelivered event owes the same deliveries (the notifier sends each
once). Pure: the sending is streams/notifications/.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from bend.core.events import (
    Event, RunCancelled, RunCompleted, RunFailed, StepScheduled, ToolApprovalRequested,
)
from bend.core.nodes import FrozenModel

__all__ = [
    "EmailTarget", "NOTIFY_EVENTS", "Notification", "NotifyEvent", "Planned", "WebhookTarget",
    "kind_of_event", "planned",
]

NotifyEvent = Literal["run_failed", "run_finished", "approval_waiting"]
NOTIFY_EVENTS: tuple[str, ...] = ("run_failed", "run_finished", "approval_waiting")


class WebhookTarget(FrozenModel):
    """A URL POSTed a JSON body signed with `X-Bend-Signature` under the secret `secret`."""

    url: str = Field(pattern=r"^https?://", max_length=2000)
    secret: str | None = None  # the NAME of the project secret that signs; unsigned if None


class EmailTarget(FrozenModel):
    """Mailboxes sent a plain-text message over the configured SMTP server."""

    to: tuple[str, ...] = Field(min_length=1)


class Notification(FrozenModel):
    """On `events` of a run (run_failed, run_finished: any end, approval_waiting: an approval
    step or a gated tool call waits), deliver to `webhook` or `email` (one of them)."""

    events: tuple[NotifyEvent, ...] = Field(min_length=1)
    webhook: WebhookTarget | None = None
    email: EmailTarget | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Notification:
        if (self.webhook is None) == (self.email is None):
            raise ValueError("a notification has exactly one of `webhook` and `email`")
        return self


@dataclass(frozen=True, slots=True)
class Planned:
    """One delivery an event owes: its id, the notification and what it tells."""

    delivery_id: str
    index: int  # the notification's place in the definition's list
    notification: Notification
    kind: str
    body: dict[str, Any]


def kind_of_event(event: Event) -> list[str]:
    """The notification events `event` is (a failure is also an end)."""
    match event:
        case RunFailed():
            return ["run_failed", "run_finished"]
        case RunCompleted() | RunCancelled():
            return ["run_finished"]
        case StepScheduled(node_type="approval") | ToolApprovalRequested():
            return ["approval_waiting"]
    return []


def _body(event: Event, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": kind, "event_id": event.event_id, "run_id": event.run_id,
        "workflow_id": event.workflow_id, "workflow_version": event.workflow_version,
        "project": event.project, "occurred_at": event.occurred_at.isoformat()}
    match event:
        case RunFailed():
            body.update(status="failed", error={"error_type": event.error_type,
                                                "message": event.message,
                                                "step_id": event.step_id})
        case RunCompleted():
            body.update(status="completed", output=event.output)
        case RunCancelled():
            body.update(status="cancelled", reason=event.reason)
        case StepScheduled():
            spec = event.input if isinstance(event.input, dict) else {}
            body.update(step_id=event.step_id, message=spec.get("message", ""),
                        approvers=spec.get("approvers"))
        case ToolApprovalRequested():
            body.update(step_id=event.step_id, approvers=event.approvers,
                        tool_call={"tool_call_id": event.tool_call_id,
                                   "tool_name": event.tool_name, "arguments": event.arguments})
    return body


def planned(event: Event, notifications: tuple[Notification, ...] | None) -> list[Planned]:
    """The deliveries `event` owes under `notifications`, with deterministic ids."""
    out: list[Planned] = []
    kinds = kind_of_event(event)
    for index, notification in enumerate(notifications or ()):
        for kind in kinds:
            if kind in notification.events:
                delivery_id = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                             f"{event.event_id}:notify:{index}:{kind}"))
                body = {"delivery_id": delivery_id, **_body(event, kind)}
                out.append(Planned(delivery_id, index, notification, kind, body))
                break  # one delivery per notification and event (a failure is not sent twice)
    return out
