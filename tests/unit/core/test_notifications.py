"""Which deliveries a run event owes under a workflow's notifications, with stable ids."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bend.core.definitions import definition_json, parse_definition
from bend.core.errors import BendError
from bend.core.events import RunCompleted, RunFailed, StepScheduled, ToolApprovalRequested
from bend.core.notifications import Notification, planned

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
ENV = {"run_id": "r1", "workflow_id": "wf", "occurred_at": T0, "project": "p1"}
HOOK = Notification.model_validate({"events": ["run_failed"],
                                    "webhook": {"url": "https://hooks.example/x",
                                                "secret": "hook"}})
MAIL = Notification.model_validate({"events": ["run_finished", "run_failed"],
                                    "email": {"to": ["ops@example.com"]}})
WAITING = Notification.model_validate({"events": ["approval_waiting"],
                                       "webhook": {"url": "http://127.0.0.1:9/w"}})


def test_a_failure_owes_each_notification_asking_for_it_one_delivery() -> None:
    failed = RunFailed(event_id="e1", **ENV, error_type="Boom", message="it broke",
                       step_id="s")
    plans = planned(failed, (HOOK, MAIL, WAITING))
    assert [(p.index, p.kind) for p in plans] == [(0, "run_failed"), (1, "run_failed")]
    body = plans[0].body
    assert body["delivery_id"] == plans[0].delivery_id
    assert (body["event"], body["run_id"], body["status"], body["project"]) == (
        "run_failed", "r1", "failed", "p1")
    assert body["error"] == {"error_type": "Boom", "message": "it broke", "step_id": "s"}


def test_delivery_ids_are_the_same_for_the_same_event_and_differ_otherwise() -> None:
    failed = RunFailed(event_id="e1", **ENV, error_type="Boom", message="m")
    again = [p.delivery_id for p in planned(failed, (HOOK, MAIL))]
    assert again == [p.delivery_id for p in planned(failed, (HOOK, MAIL))]
    other = RunFailed(event_id="e2", **ENV, error_type="Boom", message="m")
    assert not set(again) & {p.delivery_id for p in planned(other, (HOOK, MAIL))}
    assert len(set(again)) == 2


def test_an_end_and_a_waiting_approval_reach_the_notifications_asking_for_them() -> None:
    done = RunCompleted(event_id="e3", **ENV, output={"n": 1})
    [plan] = planned(done, (HOOK, MAIL, WAITING))
    assert (plan.index, plan.kind, plan.body["output"]) == (1, "run_finished", {"n": 1})
    approval = StepScheduled(event_id="e4", **ENV, step_id="ok", node_type="approval",
                             input={"message": "ship?", "approvers": {"roles": ["admin"]}})
    [plan] = planned(approval, (HOOK, MAIL, WAITING))
    assert (plan.index, plan.body["step_id"], plan.body["message"]) == (2, "ok", "ship?")
    gated = ToolApprovalRequested(event_id="e5", **ENV, step_id="a", tool_call_id="c",
                                  tool_name="t@1", arguments={"x": 1})
    [plan] = planned(gated, (WAITING,))
    assert plan.body["tool_call"] == {"tool_call_id": "c", "tool_name": "t@1",
                                      "arguments": {"x": 1}}
    tool = StepScheduled(event_id="e6", **ENV, step_id="t", node_type="tool")
    assert planned(tool, (HOOK, MAIL, WAITING)) == []
    assert planned(done, None) == []


def test_a_notification_names_exactly_one_target_and_known_events() -> None:
    base = {"name": "n", "steps": [{"id": "a", "type": "transform", "expression": "input"}]}
    for bad in ({"events": ["run_failed"]},
                {"events": ["run_failed"], "webhook": {"url": "https://x"},
                 "email": {"to": ["a@b"]}},
                {"events": ["run_exploded"], "email": {"to": ["a@b"]}},
                {"events": ["run_failed"], "webhook": {"url": "ftp://x"}}):
        with pytest.raises(BendError):
            parse_definition({**base, "notifications": [bad]})


def test_a_definition_without_notifications_keeps_its_canonical_json() -> None:
    base = {"name": "n", "steps": [{"id": "a", "type": "transform", "expression": "input"}]}
    assert "notifications" not in definition_json(parse_definition(base))
