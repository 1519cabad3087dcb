"""Audit rows: who did what to which resource and when, from the events that record it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bend.core.events import (
    EVENT_TYPES, BacktestRequested, DeadLettered, RunCancelled, RunRequested, StepSucceeded, TriggerFired,
    WorkflowActivated, WorkflowDeleted, WorkflowPaused, WorkflowRegistered,
)
from bend.security.audit import AUDITED, UNKNOWN_ACTOR, audit_row

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ENV = dict(event_id="e1", workflow_id="wf", workflow_version=2, occurred_at=AT, project="acme")


@pytest.mark.parametrize(
    ("event_cls", "action"),
    [(WorkflowActivated, "workflow.activate"), (WorkflowPaused, "workflow.pause"),
     (WorkflowDeleted, "workflow.delete")],
)
def test_workflow_lifecycle_events_are_audited_with_their_actor(event_cls: type,
                                                                action: str) -> None:
    row = audit_row(event_cls(**ENV, actor="key:abc"))
    assert row is not None
    assert (row.actor, row.action, row.resource, row.occurred_at) == (
        "key:abc", action, "workflow:wf@2", AT)
    assert (row.project, row.workflow_id, row.workflow_version, row.run_id) == ("acme", "wf", 2,
                                                                               None)


def test_a_cancelled_run_is_audited_with_who_asked_and_why() -> None:
    row = audit_row(RunCancelled(**ENV, run_id="r1", reason="wrong input", requested_by="alice"))
    assert row is not None
    assert (row.actor, row.action, row.resource, row.run_id) == ("alice", "run.cancel", "run:r1",
                                                                 "r1")
    assert row.detail == {"reason": "wrong input"}


def test_a_triggered_run_names_its_trigger_and_a_forked_run_is_a_replay() -> None:
    triggered = audit_row(RunRequested(**ENV, run_id="r2", trigger_id="t1", input={"k": "v"}))
    assert triggered is not None
    assert (triggered.actor, triggered.action) == ("trigger:t1", "run.request")
    assert "input" not in triggered.detail  # payloads may hold secrets
    forked = audit_row(RunRequested(**ENV, run_id="r3", forked_from_run_id="r1"))
    assert forked is not None and forked.action == "run.replay"
    assert forked.actor == UNKNOWN_ACTOR and forked.detail == {"forked_from_run_id": "r1"}


def test_trigger_firings_and_dead_letters_name_their_resource() -> None:
    fired = audit_row(TriggerFired(**ENV, trigger_id="t1", trigger_type="cron",
                                   dedupe_key="t1@2026"))
    assert fired is not None and fired.resource == "trigger:t1"
    dead = audit_row(DeadLettered(**ENV, source_topic="bend.commands", source_partition=1,
                                  source_offset=7, error_type="X", reason="bad"))
    assert dead is not None
    assert (dead.actor, dead.resource) == ("system", "dead_letter:bend.commands/1/7")


def test_engine_events_are_not_audited() -> None:
    assert audit_row(StepSucceeded(**ENV, run_id="r1", step_id="s1")) is None
    assert all(cls.__name__.startswith(("Workflow", "Run", "Trigger", "Dead", "Backtest"))
               for cls in AUDITED)
    assert len(AUDITED) < len(EVENT_TYPES)


def test_as_row_has_exactly_the_audit_tables_columns() -> None:
    row = audit_row(WorkflowRegistered(**ENV, name="n", definition={"secret": "x"},
                                       definition_hash="h"))
    assert row is not None
    columns = row.as_row()
    assert set(columns) == {"event_id", "occurred_at", "actor", "action", "workflow_id",
                            "workflow_version", "run_id", "tenant", "project", "detail"}
    assert columns["detail"] == {"name": "n", "definition_hash": "h", "resource": "workflow:wf@2"}


def test_a_backtest_is_audited_with_who_started_it_and_its_runs_as_backtest_runs() -> None:
    started = audit_row(BacktestRequested(**ENV, backtest_id="b1", step_id="research",
                                          changes={"prompt": "secret?"}, actor="key:abc",
                                          runs=[{"source_run_id": "r1", "run_id": "r9"}]))
    assert started is not None
    assert (started.actor, started.action, started.resource) == ("key:abc", "backtest.start",
                                                                 "workflow:wf@2")
    assert started.detail == {"backtest_id": "b1", "step_id": "research", "runs": 1,
                              "live_downstream": False}  # never the change: prompts are data
    run = audit_row(RunRequested(**ENV, run_id="r9", forked_from_run_id="r1", backtest_id="b1"))
    assert run is not None and run.action == "run.backtest"
    assert run.detail == {"forked_from_run_id": "r1", "backtest_id": "b1"}
