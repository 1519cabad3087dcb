"""A rebuilt partition owes a paused agent attempt no task, and a resumed one its new task."""

from __future__ import annotations

from datetime import datetime, timezone

from bend.core.commands import AwaitToolApproval, DecideApproval, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import StepResumed, StepScheduled
from bend.core.state import RunState
from streams.runcache import PartitionRuns

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
DEFINITION = {"name": "gated", "llm": {"base_url": "http://127.0.0.1:1/v1"}, "steps": [
    {"id": "a", "type": "agent", "model": "m", "prompt": "p",
     "tools": [{"ref": "web_search@1", "requires_approval": True}]}]}
ENV = {"run_id": "r1", "workflow_id": "wf", "occurred_at": NOW}


def _fold(runs: PartitionRuns, state: RunState | None, cmd) -> RunState:
    decision = decide(state, cmd, NOW)
    assert isinstance(decision, Accepted), decision
    for event in decision.events:
        runs.fold(event)
    assert decision.state is not None
    return decision.state


def test_the_open_task_follows_the_pause_and_the_resume() -> None:
    runs = PartitionRuns(0)
    state = _fold(runs, None, StartRun(event_id="c1", **ENV, definition=definition_json(
        parse_definition(DEFINITION)), input={}))
    assert isinstance(runs.tasks[("r1", "a")], StepScheduled)
    state = _fold(runs, state, AwaitToolApproval(event_id="c2", **ENV, step_id="a",
                                                 tool_call_id="t1", tool_name="web_search@1"))
    assert ("r1", "a") not in runs.tasks  # paused: nothing to hand out after a crash
    _fold(runs, state, DecideApproval(event_id="c3", **ENV, step_id="a", approved=True,
                                      tool_call_id="t1"))
    task = runs.tasks[("r1", "a")]
    assert isinstance(task, StepScheduled) and task.input["resume"]["tool_call_id"] == "t1"
    assert not isinstance(task, StepResumed) and task.attempt == 1
