"""bend.core.explain: every reason the pure reasoning gives, from hand-built states and facts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from bend.core.events import RunCancelled, RunCompleted
from bend.core.explain import (
    KINDS, CircuitFacts, DeadLetterFacts, ExecutorLoad, LiveFacts, PartitionFacts, explain,
    http_target,
)
from bend.core.frozen import FrozenMap
from bend.core.state import RunError, RunState, RunStatus, StepError, StepState, StepStatus, Timer

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
LATER = NOW + timedelta(seconds=30)


def run(*steps: StepState, timers: tuple[Timer, ...] = (), status: RunStatus = RunStatus.RUNNING,
        error: RunError | None = None) -> RunState:
    open_ids = frozenset(s.step_id for s in steps if s.status.open)
    return RunState(run_id="r1", workflow_id="wf", status=status, seq=5,
                    steps=FrozenMap((s.step_id, s) for s in steps),
                    timers=FrozenMap((t.timer_id, t) for t in timers), open_ids=open_ids,
                    error=error, finished_at=NOW if status.finished else None)


def orch(members: tuple[str, ...] = ("m1",), lag: int = 0) -> PartitionFacts:
    return PartitionFacts("orchestrator", "p-orchestrator", "p.commands", 2, members, lag,
                          "stable")


def execs(members: tuple[str, ...] = ("e1",), lag: int = 0) -> PartitionFacts:
    return PartitionFacts("executor", "p-executor", "p.tasks", 2, members, lag, "stable")


def facts(**kw: object) -> LiveFacts:
    base: dict[str, object] = {"now": NOW, "orchestrator": orch(), "executor": execs()}
    return LiveFacts(**{**base, **kw})  # type: ignore[arg-type]


def kinds(reasons: list) -> list[str]:
    return [r.kind for r in reasons]


SCHEDULED_TOOL = StepState("fetch", StepStatus.SCHEDULED, "tool", attempt=1, scheduled_at=NOW)
HTTP_INPUT = {"url": "http://127.0.0.1:9/api?x=1", "method": "GET"}


def test_a_delay_step_waits_on_its_timer_until_the_due_time() -> None:
    nap = StepState("nap", StepStatus.SCHEDULED, "delay", attempt=1)
    reasons = explain(run(nap, timers=(Timer("t1", "delay", LATER, "nap"),)), facts())
    assert kinds(reasons) == ["timer"]
    assert reasons[0].until == LATER and reasons[0].details["purpose"] == "delay"
    assert "nap" in reasons[0].message and not reasons[0].details["overdue"]


def test_approval_and_wait_steps_say_who_decides_and_which_signal_they_wait_for() -> None:
    ok = StepState("ok", StepStatus.SCHEDULED, "approval", attempt=1,
                   input={"approvers": {"roles": ["admin"], "keys": ["k9"]}})
    w = StepState("w", StepStatus.SCHEDULED, "wait", attempt=1, input={"signal": "go"})
    reasons = explain(run(ok, w), facts())
    assert kinds(reasons) == ["approval", "signal"]
    assert "admin, key k9" in reasons[0].message
    assert "bend runs signal r1 go" in reasons[1].message


def test_a_failed_step_waits_for_its_retry_back_off_and_says_the_error() -> None:
    step = StepState("fetch", StepStatus.RETRY_WAIT, "tool", attempt=2,
                     error=StepError("FlakyFailure", "boom", True))
    reasons = explain(run(step, timers=(Timer("t2", "retry", LATER, "fetch"),)), facts())
    assert kinds(reasons) == ["timer"]
    r = reasons[0]
    assert r.until == LATER and r.details == {"purpose": "retry", "timer_id": "t2",
                                              "step_id": "fetch", "attempt": 2, "overdue": False}
    assert "attempt 3" in r.message and "FlakyFailure: boom" in r.message


def test_an_overdue_timer_points_at_the_orchestrator() -> None:
    nap = StepState("nap", StepStatus.SCHEDULED, "delay", attempt=1)
    reasons = explain(run(nap, timers=(Timer("t1", "delay", NOW - timedelta(seconds=5),
                                             "nap"),)), facts())
    assert reasons[0].details["overdue"] and "overdue" in reasons[0].message


def test_a_running_step_names_its_worker_and_its_timeout() -> None:
    step = StepState("fetch", StepStatus.RUNNING, "http", attempt=1, worker_id="host:42",
                     started_at=NOW, input=HTTP_INPUT)
    reasons = explain(run(step, timers=(Timer("t3", "step_timeout", LATER, "fetch"),)), facts())
    assert kinds(reasons) == ["step_running", "timer"]
    assert "host:42" in reasons[0].message
    assert reasons[1].details["purpose"] == "step_timeout" and reasons[1].until == LATER


def test_a_run_timeout_is_reported_as_a_deadline() -> None:
    reasons = explain(run(timers=(Timer("rt", "run_timeout", LATER),)), facts())
    assert kinds(reasons) == ["timer"] and reasons[0].details["purpose"] == "run_timeout"


def test_a_dispatched_step_with_unread_tasks_waits_for_an_executor() -> None:
    reasons = explain(run(SCHEDULED_TOOL), facts(executor=execs(lag=7)))
    assert kinds(reasons) == ["waiting_for_executor"]
    assert reasons[0].details["lag"] == 7 and "7 task(s)" in reasons[0].message


def test_a_dispatched_step_without_lag_is_with_an_executor() -> None:
    reasons = explain(run(SCHEDULED_TOOL), facts())
    assert kinds(reasons) == ["waiting_for_executor"]
    assert "not reported started" in reasons[0].message


def test_no_executor_on_the_tasks_partition_is_said_first() -> None:
    reasons = explain(run(SCHEDULED_TOOL), facts(executor=execs(members=(), lag=1)))
    assert kinds(reasons) == ["no_consumer", "waiting_for_executor"]
    assert reasons[0].details["role"] == "executor" and reasons[0].details["partition"] == 2
    assert "bend worker executor" in reasons[0].message


def test_no_orchestrator_and_its_lag_come_before_the_steps() -> None:
    nap = StepState("nap", StepStatus.SCHEDULED, "delay", attempt=1)
    reasons = explain(run(nap, timers=(Timer("t1", "delay", LATER, "nap"),)),
                      facts(orchestrator=orch(members=(), lag=3)))
    assert kinds(reasons) == ["no_consumer", "orchestrator_lag", "timer"]
    assert reasons[0].details["role"] == "orchestrator"
    assert reasons[1].details["lag"] == 3 and "3 command(s)" in reasons[1].message


def test_orchestrator_lag_with_a_consumer_is_only_lag() -> None:
    reasons = explain(run(SCHEDULED_TOOL), facts(orchestrator=orch(lag=12)))
    assert kinds(reasons) == ["orchestrator_lag", "waiting_for_executor"]
    assert reasons[0].details["members"] == ["m1"]


def test_a_full_executor_is_a_concurrency_limit() -> None:
    loads = (ExecutorLoad("host:1", 2, 2), ExecutorLoad("host:2", 1, 2))
    reasons = explain(run(SCHEDULED_TOOL), facts(loads=loads))
    assert kinds(reasons) == ["concurrency_limit", "waiting_for_executor"]
    assert reasons[0].details["executors"] == [{"worker_id": "host:1", "in_flight": 2,
                                                "limit": 2}]
    assert "executor_concurrency" in reasons[0].message


def test_an_executor_under_its_limit_is_no_concurrency_limit() -> None:
    reasons = explain(run(SCHEDULED_TOOL), facts(loads=(ExecutorLoad("host:1", 1, 2),)))
    assert "concurrency_limit" not in kinds(reasons)


def test_an_open_circuit_for_the_steps_target_says_until_when() -> None:
    step = StepState("call", StepStatus.RETRY_WAIT, "http", attempt=6, input=HTTP_INPUT,
                     error=StepError("CircuitOpen", "open", True))
    circuit = CircuitFacts("http://127.0.0.1:9", "open", NOW, LATER, "host:1", 5)
    reasons = explain(run(step, timers=(Timer("t", "retry", NOW + timedelta(seconds=1),
                                              "call"),)),
                      facts(circuits={"http://127.0.0.1:9": circuit}))
    assert kinds(reasons) == ["timer", "circuit_open"]
    assert reasons[1].until == LATER and reasons[1].details["target"] == "http://127.0.0.1:9"
    assert reasons[1].details["consecutive_failures"] == 5


def test_a_circuit_past_its_cool_down_or_closed_or_for_another_target_is_not_a_reason() -> None:
    step = StepState("call", StepStatus.SCHEDULED, "http", attempt=1, input=HTTP_INPUT)
    for circuit in (CircuitFacts("http://127.0.0.1:9", "open", NOW, NOW - timedelta(1)),
                    CircuitFacts("http://127.0.0.1:9", "closed", NOW),
                    CircuitFacts("http://other:9", "open", NOW, LATER)):
        reasons = explain(run(step), facts(circuits={circuit.target: circuit}))
        assert "circuit_open" not in kinds(reasons), circuit


def test_http_target_is_scheme_host_and_port_of_http_steps_only() -> None:
    assert http_target(StepState("a", node_type="http", input={"url": "HTTP://Host:80/x"})) \
        == "http://host:80"
    assert http_target(StepState("a", node_type="tool", input=HTTP_INPUT)) is None
    assert http_target(StepState("a", node_type="http", input={"url": 3})) is None
    assert http_target(StepState("a", node_type="http", input=None)) is None


def test_a_subworkflow_step_waits_on_its_child_run() -> None:
    step = StepState("child", StepStatus.SCHEDULED, "subworkflow", attempt=1,
                     input={"child_run_id": "c1"})
    reasons = explain(run(step), facts(children={"c1": "running"}))
    assert kinds(reasons) == ["child_run"]
    assert reasons[0].details == {"step_id": "child", "child_run_id": "c1",
                                  "child_status": "running"}
    assert "bend runs explain c1" in reasons[0].message


def test_a_child_not_yet_seen_is_unknown() -> None:
    step = StepState("child", StepStatus.SCHEDULED, "subworkflow", attempt=1,
                     input={"child_run_id": "c1"})
    assert explain(run(step), facts())[0].details["child_status"] == "unknown"


def test_dead_letters_of_the_run_are_reported_even_when_it_finished() -> None:
    dl = DeadLetterFacts("d1", "p.commands", 2, 17, "ContractError", "cannot decode", NOW)
    reasons = explain(run(status=RunStatus.COMPLETED), facts(dead_letters=(dl,)))
    assert kinds(reasons) == ["run_finished", "dead_lettered"]
    assert reasons[1].details["source_offset"] == 17 and "re-drive" in reasons[1].message


def test_a_completed_run_says_how_long_it_took() -> None:
    done = RunCompleted(event_id="e", run_id="r1", workflow_id="wf", occurred_at=NOW, seq=5,
                        duration_ms=1500)
    reasons = explain(run(status=RunStatus.COMPLETED), facts(orchestrator=orch(members=())),
                      [done])
    assert kinds(reasons) == ["run_finished"]  # a finished run needs no orchestrator
    assert "completed in 1.5 s" in reasons[0].message and reasons[0].until == NOW


def test_a_failed_run_says_which_step_and_error() -> None:
    state = run(status=RunStatus.FAILED, error=RunError("ToolFailed", "bad input", "fetch"))
    reason = explain(state, facts())[0]
    assert reason.details["step_id"] == "fetch" and "ToolFailed: bad input" in reason.message


def test_a_cancelled_run_says_by_whom() -> None:
    state = run(status=RunStatus.CANCELLED, error=RunError("RunCancelled", "enough"))
    ev = RunCancelled(event_id="e", run_id="r1", workflow_id="wf", occurred_at=NOW, seq=5,
                      reason="enough", requested_by="ada")
    reason = explain(state, facts(), [ev])[0]
    assert reason.details["requested_by"] == "ada" and "by ada (enough)" in reason.message


def test_a_run_not_decided_yet_is_not_started() -> None:
    reasons = explain(None, facts(orchestrator=orch(lag=1)))
    assert kinds(reasons) == ["orchestrator_lag", "not_started"]


def test_a_run_with_nothing_open_is_unknown() -> None:
    assert kinds(explain(run(), facts())) == ["unknown"]


def test_container_and_finished_steps_give_no_reason_of_their_own() -> None:
    loop = StepState("loop", StepStatus.SCHEDULED, "loop", attempt=1)
    done = StepState("done", StepStatus.SUCCEEDED, "tool", attempt=1)
    assert kinds(explain(run(loop, done), facts())) == ["unknown"]


_STATUSES = st.sampled_from([StepStatus.SCHEDULED, StepStatus.RUNNING, StepStatus.RETRY_WAIT,
                             StepStatus.SUCCEEDED])
_TYPES = st.sampled_from(["tool", "http", "agent", "subworkflow", "delay", "loop"])


@given(steps=st.lists(st.tuples(_STATUSES, _TYPES), max_size=5),
       run_status=st.sampled_from(list(RunStatus)),
       orch_members=st.booleans(), orch_lag=st.integers(0, 50),
       exec_members=st.booleans(), exec_lag=st.integers(0, 50),
       in_flight=st.integers(0, 4), dead=st.booleans())
def test_every_state_gets_at_least_one_known_reason_with_a_sentence(
        steps: list, run_status: RunStatus, orch_members: bool, orch_lag: int,
        exec_members: bool, exec_lag: int, in_flight: int, dead: bool) -> None:
    states = [StepState(f"s{i}", status, kind, attempt=1, input=HTTP_INPUT if kind == "http"
                        else {"child_run_id": "c"}) for i, (status, kind) in enumerate(steps)]
    timers = tuple(Timer(f"t{i}", "retry", LATER, s.step_id) for i, s in enumerate(states)
                   if s.status is StepStatus.RETRY_WAIT)
    if run_status.finished:
        states = [s for s in states if s.status is StepStatus.SUCCEEDED]
        timers = ()
    dl = (DeadLetterFacts("d", "t", 0, 1, "E", "why", NOW),) if dead else ()
    f = facts(orchestrator=orch(("m",) if orch_members else (), orch_lag),
              executor=execs(("e",) if exec_members else (), exec_lag),
              loads=(ExecutorLoad("w", in_flight, 2),), dead_letters=dl,
              circuits={"http://127.0.0.1:9": CircuitFacts("http://127.0.0.1:9", "open", NOW,
                                                           LATER)})
    reasons = explain(run(*states, timers=timers, status=run_status), f)
    assert reasons and all(r.kind in KINDS and r.message.endswith((".", ")")) for r in reasons)
    assert (kinds(reasons)[0] == "run_finished") == run_status.finished
    assert ("dead_lettered" in kinds(reasons)) == dead
    if not run_status.finished:
        assert ("no_consumer" in kinds(reasons)) >= (not orch_members)
        assert ("orchestrator_lag" in kinds(reasons)) == bool(orch_lag)
    for r in reasons:
        if r.kind in ("timer", "circuit_open"):
            assert r.until is not None
