"""Recorded histories of the example workflows replay to the state they were recorded with.

A failure of the first test means `apply` now gives recorded events another meaning: keep the
old applier and register a new version beside it instead. A failure of the second means
`decide` no longer makes the recorded decisions; if that change is intended, regenerate the
fixtures (`.venv/bin/python tests/unit/core/histories.py`) and say so in the commit.
"""

from __future__ import annotations

import json

import pytest
from histories import FIXTURES, SCENARIOS, from_json, summary, to_json

from bend.core.apply import fold
from bend.core.decide import Accepted, decide

NAMES = sorted(SCENARIOS)


def load(name: str) -> dict:
    """The recorded history `name`."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_every_scenario_has_a_recorded_history() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_recorded_history_folds_to_its_recorded_final_state(name: str) -> None:
    history = load(name)
    state = fold([from_json(e) for e in history["events"]])
    assert summary(state) == history["final_state"]


@pytest.mark.parametrize("name", NAMES)
def test_deciding_the_recorded_commands_again_makes_the_recorded_events(name: str) -> None:
    history = load(name)
    state, made = None, []
    for data in history["commands"]:
        cmd = from_json(data)
        decision = decide(state, cmd, cmd.occurred_at)
        assert isinstance(decision, Accepted), decision
        made += decision.events
        state = decision.state
    # Recorded events read with today's classes: a field added since takes its default.
    assert [to_json(e) for e in made] == [to_json(from_json(e)) for e in history["events"]]


def test_the_recorded_histories_end_completed_completed_and_failed() -> None:
    ends = {name: load(name)["final_state"]["status"] for name in NAMES}
    assert ends == {"research_agent_timed_out": "failed", "research_completed": "completed",
                    "research_nothing_found": "completed", "release_gate_shipped": "completed",
                    "release_gate_unanswered": "failed",
                    "gated_research_rejected_fetch": "completed",
                    "research_backtested": "completed"}


def test_the_release_gate_history_records_the_decision_and_the_kept_signal() -> None:
    types = [e["type"] for e in load("release_gate_shipped")["events"]]
    assert types.index("SignalReceived") < types.index("ApprovalDecided") \
        < types.index("SignalDelivered")
    final = load("release_gate_shipped")["final_state"]
    assert final["steps"]["report"]["output"] == {"version": "1.4.0", "canaries": 2}


def test_the_gated_history_records_the_pause_the_decision_and_the_resume() -> None:
    events = load("gated_research_rejected_fetch")["events"]
    types = [e["type"] for e in events]
    assert types.index("ToolApprovalRequested") < types.index("ApprovalDecided") \
        < types.index("StepResumed") < types.index("StepSucceeded")
    decided = next(e for e in events if e["type"] == "ApprovalDecided")
    assert (decided["tool_call_id"], decided["approved"]) == ("call_2", False)
    resumed = next(e for e in events if e["type"] == "StepResumed")
    assert resumed["input"]["resume"]["comment"] == "not that site"


def test_the_backtest_history_runs_only_the_changed_step_and_replays_the_rest() -> None:
    history = load("research_backtested")
    requested = history["events"][0]
    assert (requested["type"], requested["backtest_id"]) == ("RunRequested", "bt-hist")
    assert sorted(requested["replayed"]) == ["pause", "read_first", "read_second", "research"]
    handed_out = [e["step_id"] for e in history["events"]
                  if e["type"] == "StepScheduled" and e["input"] is not None]
    assert handed_out == ["search"]  # no executor, timer or model call after it
    steps = history["final_state"]["steps"]
    assert steps["research"]["output"] == {"answer": "Sagas coordinate long transactions."}
