"""decide for gated agent tools: a pause on a gated call, its decision, the resumed attempt."""

from __future__ import annotations

from typing import Any

from core_harness import Run, wf

from bend.core.apply import fold
from bend.core.commands import AwaitToolApproval, DecideApproval
from bend.core.decide import Accepted, Rejected
from bend.core.events import StepResumed, StepScheduled
from bend.core.fork import fork_seed
from bend.core.state import StepStatus

AGENT = ("  - id: a\n    type: agent\n    model: m\n    prompt: go\n    timeout: 1h\n"
         "    llm: {base_url: 'http://127.0.0.1:1/v1'}\n"
         "    tools:\n      - web_search@1\n"
         "      - {ref: fetch_page@1, requires_approval: true, approvers: {roles: [editor]}}\n"
         "  - {id: after, type: transform, expression: steps.a.output.answer}\n")


def _pause(run: Run, call_id: str = "c1", tool: str = "fetch_page@1",
           attempt: int = 1) -> Accepted | Rejected:
    return run.send(AwaitToolApproval(**run.envelope(), step_id="a", attempt=attempt,
                                      tool_call_id=call_id, tool_name=tool,
                                      arguments={"url": "u"}, checkpoint={"messages": ["m"]}))


def _decide(run: Run, approved: bool, call_id: str = "c1", **kw: Any) -> Accepted | Rejected:
    return run.send(DecideApproval(**run.envelope(), step_id="a", approved=approved,
                                   tool_call_id=call_id, decided_by="key:k1", **kw))


def test_the_agent_task_names_its_gated_tools_and_their_approvers() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    spec = run.st("a").input
    assert spec["tools"] == ["web_search@1", "fetch_page@1"]
    assert spec["gated"] == {"fetch_page@1": {"roles": ["editor"], "keys": []}}


def test_a_gated_call_pauses_the_attempt_and_hands_out_no_task() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    decision = _pause(run)
    assert isinstance(decision, Accepted), decision
    assert run.types(decision) == ["ToolApprovalRequested:a"]
    assert decision.tasks() == ()
    st = run.st("a")
    assert st.status is StepStatus.SCHEDULED and st.attempt == 1
    assert st.awaiting is not None and st.awaiting.tool_call_id == "c1"
    assert st.awaiting.approvers == {"roles": ["editor"], "keys": []}


def test_a_pause_on_a_tool_that_is_not_gated_or_twice_is_refused() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    refused = _pause(run, tool="web_search@1")
    assert isinstance(refused, Rejected) and "needs no approval" in refused.reason
    assert isinstance(_pause(run), Accepted)
    again = _pause(run, call_id="c2")
    assert isinstance(again, Rejected) and "already waits" in again.reason
    stale = _pause(run, attempt=2)
    assert isinstance(stale, Rejected) and stale.code == "stale"


def test_an_approved_call_resumes_the_same_attempt_with_the_checkpoint() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    _pause(run)
    decision = _decide(run, True, comment="ok")
    assert isinstance(decision, Accepted), decision
    assert run.types(decision) == ["ApprovalDecided:a", "StepResumed:a"]
    decided, resumed = decision.events
    assert (decided.tool_call_id, decided.approved, decided.decided_by) == ("c1", True, "key:k1")
    assert isinstance(resumed, StepResumed) and resumed.attempt == 1
    assert resumed.input["resume"] == {"checkpoint": {"messages": ["m"]}, "tool_call_id": "c1",
                                       "approved": True, "decided_by": "key:k1",
                                       "comment": "ok"}
    [task] = decision.tasks()
    assert isinstance(task, StepScheduled) and task.event_id == resumed.event_id
    assert (task.step_id, task.attempt, task.input) == ("a", 1, resumed.input)
    assert task.timeout_ms == 3_600_000  # what is left of the step's timeout
    assert run.st("a").awaiting is None and run.st("a").input == resumed.input
    # the resumed attempt completes as usual
    run.complete("a", {"answer": "done"})
    assert run.st("after").output == "done"


def test_a_rejected_call_resumes_too_and_a_call_is_decided_once() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    _pause(run)
    decision = _decide(run, False, comment="not that page")
    assert isinstance(decision, Accepted)
    assert decision.events[1].input["resume"]["approved"] is False
    again = _decide(run, True)
    assert isinstance(again, Rejected) and "waits on no tool call c1" in again.reason
    other = _decide(run, True, call_id="c9")
    assert isinstance(other, Rejected) and other.code == "stale"


def test_a_decision_for_a_step_that_is_no_agent_is_refused() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    refused = run.send(DecideApproval(**run.envelope(), step_id="after", approved=True,
                                      tool_call_id="c1"))
    assert isinstance(refused, Rejected) and "not an agent step" in refused.reason


def test_the_log_folds_to_the_same_state_and_a_fork_after_reuses_the_output() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    _pause(run)
    _decide(run, False)
    _pause(run, call_id="c2")
    _decide(run, True, call_id="c2")
    run.complete("a", {"answer": "done"})
    replayed = fold(run.log)
    assert replayed == run.state
    # A fork from after the agent reuses its output: no call is asked about again.
    assert fork_seed(replayed, "after") == {"a": {"answer": "done"}}


def test_a_new_attempt_forgets_a_pause_its_timeout_ended() -> None:
    run = Run.of(wf(AGENT))
    run.start()
    _pause(run)
    run.fire("step_timeout", "a")  # retried: attempt 2 is scheduled after the retry timer
    run.fire("retry", "a")
    st = run.st("a")
    assert (st.attempt, st.status, st.awaiting) == (2, StepStatus.SCHEDULED, None)
    assert "resume" not in st.input
