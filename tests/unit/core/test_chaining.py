"""Which downstream runs a run's end owes, with inputs mapped from it and stable run ids."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bend.core.chaining import Downstream, downstream_run_id, downstream_starts, trigger_of
from bend.core.definitions import definition_json, parse_definition
from bend.core.errors import BendError
from bend.core.events import RunCancelled, RunCompleted, RunFailed, StepSucceeded

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
ENV = {"run_id": "r1", "workflow_id": "wf", "occurred_at": T0}
PUBLISH = Downstream(workflow="publish", input="{text: output.summary, from: run.run_id}")
ALERT = Downstream(workflow="alert", on_end=("failed", "cancelled"),
                   input="{why: run.error.message, topic: input.topic}")
ECHO = Downstream(workflow="echo")


def test_a_completed_run_starts_the_entries_for_completion_with_mapped_input() -> None:
    done = RunCompleted(event_id="e1", **ENV, output={"summary": "s"})
    starts = downstream_starts(done, {"topic": "t"}, (PUBLISH, ALERT, ECHO))
    assert [(s.index, s.workflow, s.input) for s in starts] == [
        (0, "publish", {"text": "s", "from": "r1"}), (2, "echo", {"summary": "s"})]
    assert starts[0].run_id == downstream_run_id("r1", 0) != downstream_run_id("r1", 2)
    assert starts[0].run_id == downstream_starts(done, None, (PUBLISH,))[0].run_id
    assert trigger_of("r1") == "downstream:r1"


def test_a_failure_or_cancel_starts_only_the_entries_asking_for_it() -> None:
    failed = RunFailed(event_id="e2", **ENV, error_type="Boom", message="it broke")
    [start] = downstream_starts(failed, {"topic": "t"}, (PUBLISH, ALERT))
    assert (start.workflow, start.input) == ("alert", {"why": "it broke", "topic": "t"})
    cancelled = RunCancelled(event_id="e3", **ENV)
    assert [s.workflow for s in downstream_starts(cancelled, None, (PUBLISH, ALERT))] == [
        "alert"]
    step = StepSucceeded(event_id="e4", **ENV, step_id="a")
    assert downstream_starts(step, None, (PUBLISH, ALERT, ECHO)) == []


def test_a_mapping_that_fails_says_why_and_starts_nothing() -> None:
    bad = Downstream(workflow="w", input="abs(output)")
    [start] = downstream_starts(RunCompleted(event_id="e5", **ENV, output="x"), None, (bad,))
    assert start.error and "abs" in start.error and start.input is None


def test_a_definition_checks_its_downstream_entries() -> None:
    base = {"name": "n", "steps": [{"id": "a", "type": "transform", "expression": "input"}]}
    for bad in ({"workflow": ""}, {"workflow": "w", "input": "{a: "},
                {"workflow": "w", "on_end": ["exploded"]}):
        with pytest.raises(BendError):
            parse_definition({**base, "downstream": [bad]})
    assert "downstream" not in definition_json(parse_definition(base))
