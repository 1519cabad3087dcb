"""Failures, retries, timeouts, cancellation, and the commands a run must reject."""

from __future__ import annotations

from datetime import timedelta

from core_harness import Run, wf

from bend.core.commands import CancelStep, CompleteStep, FireTimer, ReportStepStarted, StartRun
from bend.core.decide import Rejected
from bend.core.state import RunStatus, StepStatus

TOOL = "type: tool, component: web_search@1"
RETRY = "retry: {max_attempts: 3, initial_interval: 2s, backoff: 3, max_interval: 1m, jitter: 0}"


def one_tool(extra_step: str = "", extra: str = "") -> Run:
    """A started run of one tool step `a` (with `extra_step` fields) and a transform after it."""
    run = Run.of(wf(f"  - {{id: a, {TOOL}{', ' + extra_step if extra_step else ''}}}\n"
                    "  - {id: b, type: transform, expression: steps.a.output}\n", extra=extra))
    run.start()
    return run


def test_a_retryable_failure_schedules_a_retry_with_backoff_and_a_timer() -> None:
    run = one_tool(RETRY)
    run.fail("a")
    assert run.types() == ["StepStarted:a", "StepFailed:a", "StepRetryScheduled:a", "TimerSet:a"]
    started, failed, retry, timer = run.last.events
    assert started.occurred_at == run.now  # a quick step: its end reports its start
    assert failed.retryable is True and retry.next_attempt == 2 and retry.delay_ms == 2000
    assert timer.purpose == "retry" and timer.fire_at == run.now + timedelta(seconds=2)
    assert run.status("a") is StepStatus.RETRY_WAIT
    run.fire("retry", "a")
    assert run.types() == ["TimerFired:a", "StepScheduled:a"]
    assert run.last.events[1].attempt == 2 and run.last.events[1].idempotency_key == "run-1:a:2"
    assert run.last.tasks() == (run.last.events[1],)


def test_the_retry_input_is_the_first_attempts_input() -> None:
    run = one_tool(RETRY + ", inputs: {q: '${input}'}")
    first = run.st("a").input
    run.fail("a")
    run.fire("retry", "a")
    assert run.st("a").input == first


def test_back_off_grows_by_the_multiplier_and_the_last_failure_fails_the_run() -> None:
    run = one_tool(RETRY)
    run.fail("a")
    run.fire("retry", "a")
    run.fail("a")
    assert run.last.events[2].delay_ms == 6000  # 2s * 3
    run.fire("retry", "a")
    run.fail("a", error_type="Boom", message="third time")
    assert run.types() == ["StepStarted:a", "StepFailed:a", "RunFailed:a"]
    assert run.last.events[1].retryable is False
    assert run.state.status is RunStatus.FAILED
    assert run.state.error.error_type == "Boom" and "third time" in run.state.error.message


def test_a_non_retryable_error_fails_the_run_at_once() -> None:
    run = one_tool(RETRY)
    run.fail("a", retryable=False)
    assert run.types() == ["StepStarted:a", "StepFailed:a", "RunFailed:a"]


def test_error_types_named_non_retryable_are_not_retried() -> None:
    run = one_tool("retry: {max_attempts: 5, non_retryable: [PageNotFound]}")
    run.fail("a", error_type="PageNotFound")
    assert run.state.status is RunStatus.FAILED


def test_retry_on_limits_retries_to_the_named_error_types() -> None:
    run = one_tool("retry: {max_attempts: 5, retry_on: [Timeout]}")
    run.fail("a", error_type="Timeout")
    assert run.status("a") is StepStatus.RETRY_WAIT
    run.fire("retry", "a")
    run.fail("a", error_type="Other")
    assert run.state.status is RunStatus.FAILED


def test_workflow_defaults_give_the_retry_policy_of_steps_without_one() -> None:
    run = one_tool(extra="defaults: {retry: {max_attempts: 1}}\n")
    run.fail("a")
    assert run.state.status is RunStatus.FAILED


def test_a_failing_step_cancels_the_other_open_steps_before_the_run_fails() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}, retry: {{max_attempts: 1}}}}\n"
                    f"  - {{id: b, {TOOL}}}\n  - {{id: c, {TOOL}}}\n"))
    run.start()
    run.complete("c", 1)
    run.fail("a")
    assert run.types() == ["StepStarted:a", "StepFailed:a", "StepCancelled:b", "RunFailed:a"]


def test_a_step_timeout_times_the_attempt_out_and_retries_it() -> None:
    run = one_tool(RETRY + ", timeout: 10s")
    run.started("a")
    run.fire("step_timeout", "a")
    assert run.types() == ["TimerFired:a", "StepTimedOut:a", "StepRetryScheduled:a", "TimerSet:a"]
    assert run.last.events[1].timeout_ms == 10_000
    assert run.st("a").error.error_type == "StepTimedOut"
    # The zombie attempt reports late: it is no longer open.
    late = run.send(CompleteStep(**run.envelope(), step_id="a", attempt=1, output=1))
    assert isinstance(late, Rejected) and late.code == "stale"
    run.fire("retry", "a")
    assert [t.purpose for t in run.last.timers()] == ["step_timeout"]
    run.complete("a", "ok")
    assert run.state.status is RunStatus.COMPLETED


def test_a_step_timeout_timer_is_disarmed_when_the_attempt_ends_in_time() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}, timeout: 10s}}\n  - {{id: b, {TOOL}}}\n"))
    run.start()
    timer_id = run.timer("step_timeout", "a")
    run.complete("a", 1)
    assert timer_id not in run.state.timers
    late = run.send(FireTimer(**run.envelope(), timer_id=timer_id))
    assert isinstance(late, Rejected) and late.code == "stale"
    assert run.state.status is RunStatus.RUNNING


def test_a_timer_that_already_fired_is_rejected_when_it_fires_again() -> None:
    run = Run.of(wf("  - {id: d, type: delay, duration: 1m}\n"
                    f"  - {{id: a, {TOOL}}}\n"))
    run.start()
    timer_id = run.timer("delay", "d")
    run.fire("delay", "d")
    again = run.send(FireTimer(**run.envelope(), timer_id=timer_id))
    assert isinstance(again, Rejected) and again.code == "stale"


def test_the_run_timeout_cancels_open_steps_and_fails_the_run() -> None:
    run = one_tool("timeout: 1h", extra="timeout: 5m\n")
    run.fire("run_timeout")
    assert run.types() == ["TimerFired", "StepCancelled:a", "RunFailed"]
    assert run.state.error.error_type == "RunTimedOut"
    assert not run.state.timers


def test_cancel_run_cancels_open_steps_then_the_run() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}, after: [a]}}\n"
                    "  - {id: d, type: delay, duration: 1h}\n"))
    run.start()
    run.cancel()
    assert run.types() == ["StepCancelled:a", "StepCancelled:d", "RunCancelled"]
    assert run.state.status is RunStatus.CANCELLED and not run.state.timers


def test_cancelling_names_the_attempt_that_was_out_and_withdraws_only_executor_attempts(
) -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}, {RETRY}}}\n"
                    "  - {id: d, type: delay, duration: 1h}\n"))
    run.start()
    run.fail("b")  # b waits for its retry: no attempt of it is out
    decision = run.cancel()
    cancelled = {ev.step_id: ev.attempt for ev in decision.events
                 if ev.event_type == "StepCancelled"}
    assert cancelled == {"a": 1, "b": 0, "d": 1}
    # the executor holding a's task is told to stop it; b has none out, d is the engine's
    assert [(ev.step_id, ev.attempt) for ev in decision.withdrawn()] == [("a", 1)]


def test_cancel_step_skips_what_depended_only_on_it_and_the_run_goes_on() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}}}\n"
                    "  - {id: after_a, type: transform, expression: steps.a.output}\n"
                    "  - {id: both, type: transform,"
                    " expression: '[steps.a.output, steps.b.output]'}\n"))
    run.start()
    run.cancel_step("a")
    assert run.types() == ["StepCancelled:a", "StepSkipped:after_a"]
    run.complete("b", "B")
    assert run.st("both").output == [None, "B"]
    assert run.state.status is RunStatus.COMPLETED


def test_cancel_step_of_a_step_that_is_not_open_is_rejected() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}}}\n"))
    run.start()
    run.complete("a", 1)
    decision = run.send(CancelStep(**run.envelope(), step_id="a"))
    assert isinstance(decision, Rejected) and "not open" in decision.reason


def test_a_redelivered_command_is_rejected_as_a_duplicate() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}}}\n"))
    run.start()
    cmd = ReportStepStarted(**run.envelope(), step_id="a", attempt=1)
    run.ok(cmd)
    again = run.send(cmd)
    assert isinstance(again, Rejected) and again.code == "duplicate"


def test_a_second_started_report_for_the_same_attempt_is_rejected() -> None:
    run = one_tool()
    run.started("a")
    again = run.send(ReportStepStarted(**run.envelope(), step_id="a", attempt=1))
    assert isinstance(again, Rejected) and "already reported started" in again.reason


def test_completing_a_finished_step_or_an_unknown_step_is_rejected() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}}}\n"))
    run.start()
    run.complete("a", 1)
    again = run.send(CompleteStep(**run.envelope(), step_id="a", attempt=1, output=2))
    assert isinstance(again, Rejected) and "not open" in again.reason
    ghost = run.send(CompleteStep(**run.envelope(), step_id="ghost", attempt=1))
    assert isinstance(ghost, Rejected) and "never scheduled" in ghost.reason


def test_completing_a_step_the_engine_runs_itself_is_rejected() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, branches: [[a]]}\n"
                    f"  - {{id: a, {TOOL}}}\n"))
    run.start()
    refused = run.send(CompleteStep(**run.envelope(), step_id="p", attempt=1))
    assert isinstance(refused, Rejected) and "engine finishes it itself" in refused.reason


def test_a_finished_run_rejects_every_command() -> None:
    run = one_tool()
    run.complete("a", 1)
    assert run.state.status is RunStatus.COMPLETED
    for cmd in (CompleteStep(**run.envelope(), step_id="a", attempt=1),
                ReportStepStarted(**run.envelope(), step_id="a"),
                FireTimer(**run.envelope(), timer_id="x")):
        decision = run.send(cmd)
        assert isinstance(decision, Rejected) and decision.code == "finished"


def test_a_second_start_run_is_rejected_as_a_duplicate() -> None:
    run = one_tool()
    again = run.send(StartRun(**run.envelope(), definition=run.definition))
    assert isinstance(again, Rejected) and again.code == "duplicate"


def test_commands_for_a_run_that_does_not_exist_are_rejected() -> None:
    run = one_tool()
    run.state = None
    decision = run.send(CompleteStep(**run.envelope(), step_id="a"))
    assert isinstance(decision, Rejected) and decision.code == "unknown_run"


def test_timers_disarmed_within_the_same_decision_are_not_handed_out_to_arm() -> None:
    run = Run.of(wf(f"  - {{id: a, {TOOL}, timeout: 1m}}\n"
                    "  - {id: bad, type: transform, expression: 'length(`3`)'}\n"))
    decision = run.start()
    assert "TimerSet:a" in run.types() and "StepCancelled:a" in run.types()
    assert decision.timers() == () and decision.tasks() == ()


def test_a_subworkflow_step_timing_out_cancels_its_child_run() -> None:
    run = Run.of(wf("  - id: child\n    type: subworkflow\n    workflow: inner\n"
                    "    timeout: 1m\n    retry: {max_attempts: 1}\n"))
    [start] = run.start().outbox
    run.fire("step_timeout", "child")
    [cancel] = run.last.outbox
    assert cancel.event_type == "CancelRun" and cancel.run_id == start.run_id
    assert run.state.status is RunStatus.FAILED
