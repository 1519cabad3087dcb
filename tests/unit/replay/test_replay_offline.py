"""Replay without a broker: folding a recorded history, its timeline, the projection check,
the Avro archive and the fork's StartRun."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bend.contracts.codec import decode, encode
from bend.core.decide import Accepted, decide
from bend.core.events import RunRequested, StepSucceeded
from bend.core.fork import UnknownStep
from bend.core.state import StepStatus
from bend.replay.archive import BadArchive, read_archive, write_archive
from bend.replay.compare import differences
from bend.replay.errors import ReplayDiverged
from bend.replay.fork import fork_command, parse_assignment
from bend.replay.read import Recorded
from bend.replay.replay import fold_report

sys.path.insert(0, str(Path(__file__).parents[1] / "core"))
from histories import FIXTURES, from_json  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _history() -> list:
    data = json.loads((FIXTURES / "research_completed.json").read_text())
    return [from_json(e) for e in data["events"]]


def _rows(report) -> tuple[dict, list[dict]]:
    s = report.state
    run = {"status": s.status.value, "output": s.output}
    steps = [{"step_id": k, "status": v.status.value, "attempts": v.attempt, "output": v.output}
             for k, v in s.steps.items()]
    return run, steps


def test_a_recorded_history_folds_to_its_final_state_with_a_timeline_of_attempts() -> None:
    report = fold_report("r", _history())
    assert report.state.status.value == "completed"
    lines = {line.step_id: line for line in report.steps}
    assert [a.outcome for a in lines["read_second"].attempts] == ["failed", "succeeded"]
    assert lines["nothing_found"].skipped
    research = lines["research"].attempts[0]
    assert research.duration_ms is not None and research.duration_ms >= 0
    assert report.as_dict()["events"] == 41


def test_a_projection_that_agrees_has_no_differences_and_one_that_lags_has_some() -> None:
    report = fold_report("r", _history())
    run, steps = _rows(report)
    assert differences(report.state, run, steps) == []
    stale = [dict(r, status="running") if r["step_id"] == "report" else r for r in steps]
    found = differences(report.state, {**run, "status": "running"}, stale[1:])
    assert any(d.startswith("run status") for d in found)
    assert any("report status" in d or "missing" in d for d in found)
    assert differences(report.state, None, []) != []


def test_an_event_out_of_sequence_makes_the_replay_diverge() -> None:
    events = _history()
    with pytest.raises(ReplayDiverged):
        fold_report("r", [events[0], replace(events[2], seq=2), replace(events[1], seq=3)])


def test_an_archive_gives_back_the_same_events_byte_for_byte(tmp_path: Path) -> None:
    events = _history()
    recorded = [Recorded("x-run-events", 2, i, encode(e), e) for i, e in enumerate(events)]
    path = tmp_path / "run.avro"
    assert write_archive(path, recorded) == len(events)
    back = list(read_archive(path))
    assert [r.raw for r in back] == [r.raw for r in recorded]
    assert [r.event for r in back] == [decode(r.raw) for r in recorded]
    assert back[5].partition == 2 and back[5].offset == 5
    (tmp_path / "bad.avro").write_bytes(b"not avro")
    with pytest.raises(BadArchive):
        list(read_archive(tmp_path / "bad.avro"))


def test_a_fork_reuses_the_outputs_before_its_step_and_runs_that_step_again() -> None:
    source = fold_report("src", _history()).state
    cmd = fork_command(source, "research", NOW, overrides={"topic": "forks"})
    assert cmd.forked_from_run_id == source.run_id and cmd.fork_step_id == "research"
    assert cmd.input["topic"] == "forks"
    assert "research" not in cmd.seed and "report" not in cmd.seed
    assert cmd.seed["plan"] == source.step("plan").output
    decision = decide(None, decode(encode(cmd)), NOW)  # through the wire, as the orchestrator
    assert isinstance(decision, Accepted)
    assert isinstance(decision.events[0], RunRequested)
    assert decision.events[0].forked_from_run_id == source.run_id
    reused = {e.step_id: e.output for e in decision.events if isinstance(e, StepSucceeded)}
    assert reused == cmd.seed
    assert decision.state.step("research").status is not StepStatus.SUCCEEDED
    with pytest.raises(UnknownStep):
        fork_command(source, "no_such_step", NOW)


def test_a_set_assignment_reads_json_values_and_keeps_other_text() -> None:
    assert parse_assignment("limit=3") == ("limit", 3)
    assert parse_assignment("topic=sagas") == ("topic", "sagas")
    with pytest.raises(ValueError):
        parse_assignment("novalue")


def test_a_tombstone_in_the_run_log_is_skipped_like_any_undecodable_record() -> None:
    from types import SimpleNamespace

    from bend.contracts.codec import decode
    from bend.replay.read import _keep

    tombstone = SimpleNamespace(key=b"run-1", value=None, offset=3)
    assert _keep(tombstone, decode, {"run-1"}, None, None) is None
