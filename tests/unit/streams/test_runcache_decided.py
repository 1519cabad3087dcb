"""A rebuilt partition remembers its last decisions: the state before each, by command id."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from bend.core.commands import StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from streams import runcache
from streams.runcache import PartitionRuns

DEFINITION = {"name": "one", "steps": [{"id": "a", "type": "transform", "expression": "input"}]}
NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def _start() -> StartRun:
    run_id = str(uuid.uuid4())
    return StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-one",
                    workflow_version=1, occurred_at=NOW, correlation_id=run_id,
                    definition=definition_json(parse_definition(DEFINITION)), input={"x": 1})


def test_each_decision_folded_is_remembered_with_the_state_before_it() -> None:
    start = _start()
    decision = decide(None, start, NOW)
    assert isinstance(decision, Accepted) and len(decision.events) > 1
    runs = PartitionRuns(0)
    for event in decision.events:
        runs.fold(event)
    decided = runs.decided[start.event_id]
    assert decided.before is None and decided.first_event_id == decision.events[0].event_id
    again = decide(decided.before, start, NOW)  # the same decision, made again
    assert isinstance(again, Accepted) and again.events == decision.events


def test_only_the_most_recent_decisions_are_kept(monkeypatch) -> None:
    monkeypatch.setattr(runcache, "RECENT_DECISIONS", 3)
    runs, starts = PartitionRuns(0), [_start() for _ in range(5)]
    for start in starts:
        decision = decide(None, start, NOW)
        assert isinstance(decision, Accepted)
        for event in decision.events:
            runs.fold(event)
    assert list(runs.decided) == [s.event_id for s in starts[-3:]]
