"""decide for approval and wait steps: decisions, timeouts and their defaults, kept signals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from core_harness import T0, Run, wf

from bend.core.apply import fold
from bend.core.decide import Accepted, Rejected
from bend.core.definitions import load_definition
from bend.core.errors import BendError
from bend.core.state import RunStatus, StepStatus

APPROVAL = ("  - {id: ok, type: approval, message: 'ship ${input.what}?', timeout: 1h,\n"
            "     answer_schema: {type: object, required: [size],\n"
            "                     properties: {size: {type: integer}}}}\n"
            "  - {id: after, type: transform, expression: steps.ok.output.size}\n")
WAIT = ("  - {id: w, type: wait, signal: go, timeout: 10m,\n"
        "     payload_schema: {type: object, required: [n], properties: {n: {type: integer}}}}\n"
        "  - {id: after, type: transform, expression: steps.w.output.n}\n")


def _rejected(decision: Accepted | Rejected, *words: str) -> Rejected:
    assert isinstance(decision, Rejected), decision
    assert all(w in decision.reason for w in words), decision.reason
    return decision


def test_an_approval_waits_with_its_rendered_message_and_a_timeout_timer() -> None:
    run = Run.of(wf(APPROVAL), input={"what": "v2"})
    decision = run.start()
    assert run.types()[-2:] == ["StepScheduled:ok", "TimerSet:ok"]
    assert decision.tasks() == ()  # no executor takes it
    st = run.st("ok")
    assert st.status is StepStatus.SCHEDULED
    assert st.input["message"] == "ship v2?"
    assert st.input["approvers"] == {"roles": ["operator", "admin"], "keys": []}
    assert st.input["timeout_at"] == (T0 + timedelta(hours=1)).isoformat()


def test_an_approved_step_outputs_the_answer_and_the_run_goes_on() -> None:
    run = Run.of(wf(APPROVAL), input={"what": "v2"})
    run.start()
    run.advance_clock(60)
    decision = run.decide_approval("ok", answer={"size": 3}, comment="fine")
    assert isinstance(decision, Accepted)
    assert run.types(decision) == ["ApprovalDecided:ok", "StepSucceeded:ok",
                                   "StepScheduled:after", "StepSucceeded:after", "RunCompleted"]
    decided = decision.events[0]
    assert (decided.approved, decided.decided_by, decided.comment, decided.answer,
            decided.timed_out) == (True, "key:k1", "fine", {"size": 3}, False)
    assert run.st("after").output == 3 and not run.state.timers


def test_a_rejected_approval_fails_the_step_and_the_run_without_retry() -> None:
    run = Run.of(wf(APPROVAL), input={"what": "v2"})
    run.start()
    run.decide_approval("ok", approved=False, comment="not today")
    assert run.types()[-3:] == ["ApprovalDecided:ok", "StepFailed:ok", "RunFailed:ok"]
    assert run.state.error.error_type == "ApprovalRejected"
    assert "not today" in run.state.error.message


def test_an_approval_is_decided_once() -> None:
    run = Run.of(wf(APPROVAL + "  - {id: more, type: approval}\n"), input={"what": "v2"})
    run.start()
    run.decide_approval("ok", answer={"size": 1})
    _rejected(run.decide_approval("ok", answer={"size": 2}), "not waiting", "succeeded")
    assert run.st("after").output == 1


def test_an_answer_that_fails_the_schema_is_refused_and_the_run_is_unchanged() -> None:
    run = Run.of(wf(APPROVAL), input={"what": "v2"})
    run.start()
    before = run.state
    _rejected(run.decide_approval("ok", answer={"size": "big"}), "answer_schema", "size")
    assert run.state is before


def test_deciding_a_step_that_is_no_approval_or_never_began_is_refused() -> None:
    run = Run.of(wf("  - {id: a, type: tool, component: x@1}\n"
                    "  - {id: ok, type: approval, after: [a]}\n"))
    run.start()
    _rejected(run.decide_approval("a"), "not an approval")
    _rejected(run.decide_approval("ok"), "not an approval")  # not begun yet
    _rejected(run.decide_approval("nope"), "not an approval")


def test_an_approval_past_its_timeout_is_refused_before_the_timer_fires() -> None:
    run = Run.of(wf(APPROVAL), input={"what": "v2"})
    run.start()
    run.advance_clock(3600)
    _rejected(run.decide_approval("ok", answer={"size": 1}), "timed out")


@pytest.mark.parametrize("default,status", [("reject", RunStatus.FAILED),
                                            ("approve", RunStatus.COMPLETED)])
def test_an_approval_timeout_takes_its_default(default: str, status: RunStatus) -> None:
    run = Run.of(wf(f"  - {{id: ok, type: approval, timeout: 5m, on_timeout: {default}}}\n"))
    run.start()
    run.advance_clock(300)
    decision = run.fire("step_timeout", "ok")
    decided = decision.events[1]
    assert run.types(decision)[:2] == ["TimerFired:ok", "ApprovalDecided:ok"]
    assert (decided.approved, decided.timed_out) == (default == "approve", True)
    assert run.state.status is status
    _rejected(run.decide_approval("ok"), run.state.status.value)


def test_an_approval_without_a_timeout_sets_no_timer_and_takes_no_workflow_default() -> None:
    run = Run.of(wf("  - {id: ok, type: approval}\n", "defaults: {timeout: 1m}\n"))
    run.start()
    assert not run.state.timers


def test_approvers_and_timeouts_are_options_of_the_awaiting_kinds_only() -> None:
    load_definition(wf("  - {id: ok, type: approval, approvers: {roles: [editor], keys: [k1]}}\n"))
    with pytest.raises(BendError, match="takes no timeout"):
        load_definition(wf("  - {id: t, type: transform, expression: input, timeout: 1m}\n"))
    with pytest.raises(BendError, match="takes no retry"):
        load_definition(wf("  - {id: ok, type: approval, retry: {max_attempts: 2}}\n"))
    with pytest.raises(BendError, match="JSON Schema"):
        load_definition(wf("  - {id: w, type: wait, signal: s, payload_schema: {type: 12}}\n"))


def test_a_signal_resumes_the_step_waiting_for_it_with_its_payload() -> None:
    run = Run.of(wf(WAIT))
    run.start()
    assert run.types()[-2:] == ["StepScheduled:w", "TimerSet:w"]
    decision = run.signal("go", {"n": 7})
    assert run.types(decision) == ["SignalReceived", "SignalDelivered:w", "StepSucceeded:w",
                                   "StepScheduled:after", "StepSucceeded:after", "RunCompleted"]
    assert run.st("after").output == 7 and run.state.signals == ()


def test_a_signal_before_the_wait_is_kept_and_taken_when_the_step_begins() -> None:
    run = Run.of(wf("  - {id: a, type: tool, component: x@1}\n"
                    "  - {id: w, type: wait, signal: go, after: [a]}\n"))
    run.start()
    decision = run.signal("go", {"early": True})
    assert run.types(decision) == ["SignalReceived"]
    [kept] = run.state.signals
    assert (kept.name, kept.payload, kept.signal_id) == ("go", {"early": True},
                                                         decision.events[0].event_id)
    run.complete("a")
    assert run.types()[-4:] == ["StepScheduled:w", "SignalDelivered:w", "StepSucceeded:w",
                                "RunCompleted"]
    assert run.st("w").output == {"early": True} and run.state.signals == ()


def test_kept_signals_are_taken_one_per_wait_in_arrival_order() -> None:
    run = Run.of(wf("  - {id: a, type: tool, component: x@1}\n"
                    "  - {id: w1, type: wait, signal: go, after: [a]}\n"
                    "  - {id: w2, type: wait, signal: go, after: [w1]}\n"
                    "  - {id: w3, type: wait, signal: go, after: [w2]}\n"))
    run.start()
    run.signal("go", 1)
    run.signal("go", 2)
    run.complete("a")
    assert [run.st(s).output for s in ("w1", "w2")] == [1, 2]
    assert run.status("w3") is StepStatus.SCHEDULED
    run.signal("go", 3)
    assert run.state.status is RunStatus.COMPLETED


def test_a_signal_no_wait_step_takes_or_with_a_bad_payload_is_refused() -> None:
    run = Run.of(wf(WAIT))
    run.start()
    before = run.state
    _rejected(run.signal("stop", {"n": 1}), "no wait step", "'stop'")
    _rejected(run.signal("go", {"n": "x"}), "payload_schema", "n")
    assert run.state is before


def test_an_early_signal_must_fit_the_schema_of_the_step_it_would_wait_for() -> None:
    run = Run.of(wf("  - {id: a, type: tool, component: x@1}\n" + WAIT.replace(
        "{id: w,", "{id: w, after: [a],")))
    run.start()
    _rejected(run.signal("go", {}), "payload_schema", "'n' is a required property")
    assert run.state.signals == ()


def test_a_signal_for_a_finished_run_is_refused() -> None:
    run = Run.of(wf(WAIT))
    run.start()
    run.signal("go", {"n": 1})
    _rejected(run.signal("go", {"n": 2}), "completed")


def test_a_wait_past_its_timeout_times_out_and_fails_the_run() -> None:
    run = Run.of(wf(WAIT))
    run.start()
    run.advance_clock(600)
    run.fire("step_timeout", "w")
    assert run.status("w") is StepStatus.TIMED_OUT
    assert run.state.status is RunStatus.FAILED


def test_the_log_of_approvals_and_signals_replays_to_the_live_state() -> None:
    run = Run.of(wf(APPROVAL + WAIT.replace("id: after", "id: later")), input={"what": "x"})
    run.start()
    run.signal("go", {"n": 2})
    run.decide_approval("ok", answer={"size": 1})
    assert run.state.status is RunStatus.COMPLETED
    assert fold(run.log) == run.state
