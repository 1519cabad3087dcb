"""The harness runs a workflow with the engine's decide and apply, fakes for its executors and a
clock that jumps: retries, delays and timeouts take no wall time; signals and approvals resume."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bend.harness import (
    HANG, Harness, NoFake, ScriptedModel, StepFailure, run_workflow,
)

RETRY_CHAIN = yaml.safe_load((Path(__file__).parents[3] / "examples" /
                              "retry_chain.yaml").read_text())


def flaky() -> Any:
    """The engine's flaky@1 as a fake: fails the first `fail_attempts` calls."""
    calls: list[dict[str, Any]] = []

    def fake(inputs: dict[str, Any]) -> dict[str, Any]:
        calls.append(inputs)
        if len(calls) <= inputs["fail_attempts"]:
            raise RuntimeError(f"attempt {len(calls)} of {inputs['fail_attempts']} planned failures")
        return {"attempt": len(calls)}

    fake.calls = calls  # type: ignore[attr-defined]
    return fake


def noop(inputs: dict[str, Any]) -> dict[str, Any]:
    return inputs


def test_a_tool_chain_with_a_retry_and_a_delay_completes_without_waiting() -> None:
    began = time.monotonic()
    result = run_workflow(RETRY_CHAIN, {"fail_attempts": 1},
                          tools={"flaky@1": flaky(), "noop": noop})
    assert time.monotonic() - began < 0.5
    assert (result.status, result.output) == ("completed", {"passed_on": 2})
    assert result.state.step("fetch").attempt == 2
    assert result.event_types == [
        "RunRequested", "RunStarted",
        "StepScheduled", "StepStarted", "StepFailed", "StepRetryScheduled", "TimerSet",  # fetch
        "TimerFired", "StepScheduled", "StepStarted", "StepSucceeded",  # its retry
        "StepScheduled", "TimerSet", "TimerFired", "StepSucceeded",  # pause
        "StepScheduled", "StepStarted", "StepSucceeded",  # echo
        "RunCompleted"]
    assert [e.seq for e in result.events] == list(range(1, 20))
    retry_at = next(e for e in result.events if type(e).__name__ == "StepRetryScheduled")
    assert retry_at.delay_ms == 300  # type: ignore[attr-defined]
    # the clock jumped: 300 ms of back-off and the 1 s pause
    assert result.now - result.events[0].occurred_at == timedelta(milliseconds=1300)


def test_a_step_failing_for_good_fails_the_run_with_its_error() -> None:
    def broken(inputs: dict[str, Any]) -> Any:
        raise StepFailure("bad request", retryable=False, error_type="ToolRejected")

    result = run_workflow(RETRY_CHAIN, {"fail_attempts": 0},
                          tools={"flaky@1": broken, "noop@1": noop})
    assert result.status == "failed"
    assert result.state.error is not None and result.state.error.error_type == "ToolRejected"
    assert result.step_status("fetch") == "failed" and result.state.step("fetch").attempt == 1
    many = run_workflow(RETRY_CHAIN, {"fail_attempts": 5},
                        tools={"flaky@1": flaky(), "noop@1": noop})
    assert (many.status, many.state.step("fetch").attempt) == ("failed", 3)


def test_a_step_that_never_answers_is_ended_by_its_timeout_and_retried() -> None:
    answers: list[Any] = [HANG, {"ok": True}]
    definition = {"name": "slow", "steps": [
        {"id": "call", "type": "http", "url": "https://example.test/x", "timeout": "5s",
         "retry": {"max_attempts": 2, "initial_interval": "1s", "jitter": 0}}]}
    seen: list[dict[str, Any]] = []

    def http(request: dict[str, Any]) -> Any:
        seen.append(request)
        return answers.pop(0)

    result = run_workflow(definition, {}, http=http)
    assert result.status == "completed" and result.step_output("call") == {"ok": True}
    assert "StepTimedOut" in result.event_types
    assert seen[0]["url"] == "https://example.test/x"


def test_signals_and_approvals_resume_a_waiting_run() -> None:
    definition = {"name": "gated", "steps": [
        {"id": "w", "type": "wait", "signal": "go"},
        {"id": "ok", "type": "approval", "message": "ship?", "after": ["w"]},
        {"id": "after", "type": "transform",
         "mapping": {"signal": "steps.w.output", "answer": "steps.ok.output"}}]}
    harness = Harness(definition)
    assert harness.start({}).status == "running"
    assert harness.signal("go", {"n": 7}).step_status("ok") != "succeeded"
    result = harness.approve("ok", answer={"why": "fine"})
    assert result.status == "completed"
    assert result.output["after"]["signal"] == {"n": 7}
    rejected = Harness(definition)
    rejected.start({})
    rejected.signal("go", {"n": 1})
    assert rejected.reject("ok", comment="no").status == "failed"


def test_agents_answer_from_a_script_and_a_missing_fake_says_which() -> None:
    definition = {"name": "agentic", "llm": {"base_url": "http://llm.test/v1"}, "steps": [
        {"id": "think", "type": "agent", "model": "m", "prompt": "topic ${input.t}"}]}
    model = ScriptedModel([{"answer": "done"}])
    result = run_workflow(definition, {"t": "kafka"}, agents={"think": model})
    assert result.output == {"think": {"answer": "done"}}
    assert "kafka" in str(model.seen[0])
    with pytest.raises(NoFake, match="no fake for tool 'flaky@1'"):
        run_workflow(RETRY_CHAIN, {"fail_attempts": 0}, tools={"noop@1": noop})


def test_cancel_and_advance_drive_a_run_waiting_on_a_delay() -> None:
    definition = {"name": "nap", "steps": [{"id": "nap", "type": "delay", "duration": "1h"},
                                           {"id": "w", "type": "wait", "signal": "go"}]}
    harness = Harness(definition)
    harness.start({})  # the delay fires at once (time is skipped); the wait holds the run
    assert harness.result().step_status("nap") == "succeeded"
    assert harness.cancel("enough").status == "cancelled"
