"""Log lines, graphs, positions, cursors and input checks, rendered without any I/O."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bend.api.graph import run_graph
from bend.api.inputs import check_inputs
from bend.api.logs import log_line
from bend.api.paging import after_cursor, next_cursor
from bend.api.problems import InvalidCursor, InvalidInput
from bend.triggering.records import run_id_for
from bend.kafka.errors import InvalidPosition
from bend.kafka.position import Position

T = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _event(kind: str, **payload: object) -> dict:
    return {"seq": 3, "event_type": kind, "step_id": payload.get("step_id"), "occurred_at": T,
            "payload": payload}


@pytest.mark.parametrize(("kind", "payload", "level", "message"), [
    ("StepFailed", {"step_id": "fetch", "attempt": 2, "error_type": "Timeout",
                    "message": "slow", "retryable": False}, "error",
     "step fetch attempt 2 failed (not retryable): Timeout: slow"),
    ("StepRetryScheduled", {"step_id": "fetch", "next_attempt": 3, "delay_ms": 400}, "warning",
     "step fetch retries as attempt 3 in 400 ms"),
    ("RunRequested", {"trigger_id": "nightly", "workflow_version": 4}, "info",
     "run requested by trigger nightly (workflow version 4)"),
    ("AgentLlmCallRecorded", {"step_id": "s", "model": "m", "prompt_tokens": 5,
                              "completion_tokens": 2, "latency_ms": 9,
                              "request": {"messages": ["a prompt"]}}, "info",
     "step s called m (5 + 2 tokens, 9 ms)"),
    ("ApprovalDecided", {"step_id": "ok", "approved": False, "decided_by": "key:k1",
                         "comment": "too soon", "answer": None}, "info",
     "step ok rejected by key:k1: too soon"),
    ("ApprovalDecided", {"step_id": "ok", "approved": True, "timed_out": True}, "info",
     "step ok approved by its timeout's default"),
    ("SignalReceived", {"name": "go", "sent_by": "key:k1", "payload": {"n": 1}}, "info",
     "signal go received from key:k1"),
    ("SignalDelivered", {"step_id": "w", "name": "go", "signal_id": "e1"}, "info",
     "step w took signal go"),
])
def test_each_event_renders_as_one_log_line_with_a_level(kind: str, payload: dict, level: str,
                                                         message: str) -> None:
    line = log_line(_event(kind, **payload))
    assert (line.level, line.message) == (level, message)
    assert "a prompt" not in line.message


DEFINITION = {"name": "g", "steps": [
    {"id": "items", "type": "transform", "expression": "input.items"},
    {"id": "each", "type": "loop", "for_each": "steps.items.output", "body": ["one"]},
    {"id": "one", "type": "transform", "expression": "item"},
]}


def _step(step_id: str, status: str, attempts: int = 1) -> dict:
    return {"step_id": step_id, "node_type": "transform", "status": status,
            "attempts": attempts, "started_at": T, "finished_at": T}


def test_a_graph_folds_loop_iterations_into_their_step_and_draws_its_edges() -> None:
    graph = run_graph({"run_id": "r", "status": "running", "definition": DEFINITION},
                      [_step("items", "succeeded"), _step("one[0]", "succeeded"),
                       _step("one[1]", "running"), _step("one[2]", "failed", 3)])
    nodes = {n.id: n for n in graph.nodes}
    assert (nodes["one"].status, nodes["one"].instances, nodes["one"].attempts) == (
        "running", 3, 5)
    assert nodes["one"].finished_at is None and nodes["each"].status == "not_started"
    edges = {(e.source, e.target, e.kind) for e in graph.edges}
    assert ("each", "one", "body") in edges and ("items", "each", "after") in edges


def test_a_graph_of_a_definition_that_no_longer_parses_shows_the_steps_that_ran() -> None:
    graph = run_graph({"run_id": "r", "status": "failed", "definition": {"steps": "?"}},
                      [_step("a", "failed")])
    assert [(n.id, n.status) for n in graph.nodes] == [("a", "failed")] and graph.edges == []


def test_a_position_token_round_trips_and_bad_tokens_are_refused() -> None:
    position = Position("bend.run-events", 2, 17)
    assert Position.parse(position.token) == position
    for bad in ("", "topic", "topic:1", "topic:x:1", ":1:2", "t:-1:2", "t:1:-2"):
        with pytest.raises(InvalidPosition):
            Position.parse(bad)


def test_a_cursor_continues_after_the_last_row_of_a_full_page() -> None:
    rows = [{"at": T, "id": f"r{i}"} for i in range(3)]
    cursor = next_cursor(rows, 2, "at", "id")
    assert cursor is not None and after_cursor(cursor) == (T, "r1")
    assert next_cursor(rows, 3, "at", "id") is None
    with pytest.raises(InvalidCursor):
        after_cursor("definitely not a cursor")


def test_inputs_are_checked_against_the_input_schema_with_locations() -> None:
    definition = {"input_schema": {"type": "object", "required": ["q"],
                                   "properties": {"q": {"type": "string"}}}}
    check_inputs("w", definition, [{"q": "ok"}], ["input"])
    with pytest.raises(InvalidInput) as caught:
        check_inputs("w", definition, [{"q": 1}, {}], ["inputs[0]", "inputs[1]"])
    assert caught.value.problems == (("inputs[0].q", "1 is not of type 'string'"),
                                     ("inputs[1]", "'q' is a required property"))


def test_the_same_idempotency_key_gives_the_same_run_id_per_workflow() -> None:
    assert run_id_for("w1", "k") == run_id_for("w1", "k")
    assert run_id_for("w1", "k") != run_id_for("w2", "k")
    assert run_id_for("w1", None) != run_id_for("w1", None)
