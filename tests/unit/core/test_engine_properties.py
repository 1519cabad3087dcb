"""Random workflows under random executor behaviour, driven through decide and apply.

Hypothesis builds small valid workflows (transform, tool, condition, parallel, delay, loop,
approval, wait and agent steps with a gated tool) and interleaves completions, failures,
timeouts, approvals and rejections, pauses on gated tool calls and their decisions, signals
(early, late, unwanted), cancellations, redeliveries and stale reports. Whatever happens: the log replays to the live state, apply takes every event decide
makes, seq grows by one, no step succeeds twice, a redelivered command is rejected, a finished
run rejects everything, and a run whose executors eventually answer eventually finishes.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from core_harness import Run
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bend.core.apply import fold
from bend.core.commands import (
    AwaitToolApproval, CancelRun, CancelStep, Command, CompleteStep, DecideApproval, FailStep,
    FireTimer, ReportStepStarted, SignalRun, StartRun,
)
from bend.core.decide import Accepted, Rejected
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import StepSucceeded
from bend.core.state import StepStatus

SIMPLE = ("transform", "tool", "tool", "delay", "approval", "wait", "agent", "agent")
REPORTED = ("tool", "agent")  # executor steps: completed, failed, started from outside
SIGNALS = ("go", "more")


def _simple_step(draw: Any, sid: str, visible: list[str], in_loop: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(SIMPLE if not in_loop else ("transform", "tool")))
    deps = draw(st.lists(st.sampled_from(visible), unique=True, max_size=2)) if visible else []
    via_after = draw(st.booleans())
    refs = {f"v{k}": f"steps.{d}.output" for k, d in enumerate(deps)} if not via_after else {}
    step: dict[str, Any] = {"id": sid, "type": kind}
    if draw(st.integers(0, 4)) == 0:
        step["when"] = f"input.flags[{draw(st.integers(0, 2))}]"
    if via_after and deps:
        step["after"] = deps
    if kind == "transform":
        step["mapping"] = refs or {"v": "item" if in_loop else "input.flags"}
    elif kind == "tool":
        step["component"] = "web_search@1"
        step["inputs"] = {k: "${" + v + "}" for k, v in refs.items()} or (
            {"q": "${item}"} if in_loop else {})
        step["retry"] = {"max_attempts": draw(st.integers(1, 3)), "initial_interval": "1s",
                         "jitter": 0.2}
        if draw(st.booleans()):
            step["timeout"] = "30s"
    elif kind == "agent":
        step.update(model="m", prompt="p", llm={"base_url": "http://127.0.0.1:1/v1"},
                    tools=["fetch_page@1", {"ref": "web_search@1", "requires_approval": True}],
                    retry={"max_attempts": draw(st.integers(1, 2)), "initial_interval": "1s"})
        if draw(st.booleans()):
            step["timeout"] = "30s"
        if deps and not via_after:
            step["after"] = deps
    elif kind in ("approval", "wait"):
        if kind == "approval":
            step["on_timeout"] = draw(st.sampled_from(("approve", "reject")))
        else:
            step["signal"] = draw(st.sampled_from(SIGNALS))
        if draw(st.booleans()):
            step["timeout"] = "20s"
        if deps and not via_after:
            step["after"] = deps
    else:
        step["duration"] = "5s"
        if deps and not via_after:
            step["after"] = deps
    return step


@st.composite
def workflows(draw: Any) -> dict[str, Any]:
    """A valid workflow of 2 to 8 steps (containers own the simple steps right after them)."""
    steps: list[dict[str, Any]] = []
    visible: list[str] = []  # steps later top-level steps may depend on
    target = draw(st.integers(2, 8))
    while len(steps) < target:
        i = len(steps)
        kind = draw(st.sampled_from(("simple", "simple", "condition", "parallel", "loop")))
        if kind == "simple":
            steps.append(_simple_step(draw, f"s{i}", visible, False))
            visible.append(f"s{i}")
            continue
        cid = f"c{i}"
        size = draw(st.integers(1, 3))
        members = [f"s{i + 1 + k}" for k in range(size)]
        inner_visible = list(visible)
        body = []
        for m in members:
            body.append(_simple_step(draw, m, inner_visible, kind == "loop"))
            inner_visible.append(m)
        if kind == "condition":
            cut = draw(st.integers(0, size))
            container = {"id": cid, "type": "condition",
                         "if": f"input.flags[{draw(st.integers(0, 2))}]",
                         "then": members[:cut], "else": members[cut:]}
            visible += members
        elif kind == "parallel":
            branches = [[m] for m in members]
            join = draw(st.sampled_from(("all", "any", "first_n")))
            container = {"id": cid, "type": "parallel", "branches": branches, "join": join}
            if join == "first_n":
                container["n"] = draw(st.integers(1, len(branches)))
            visible += members
        else:
            container = {"id": cid, "type": "loop", "for_each": "input.items", "body": members,
                         "concurrency": draw(st.integers(1, 2))}
        steps += [container, *body]
        visible.append(cid)
    defn: dict[str, Any] = {"name": "random", "steps": steps}
    if draw(st.booleans()):
        defn["timeout"] = "1h"
    return definition_json(parse_definition(defn))  # valid by construction; parse proves it


INPUTS = st.fixed_dictionaries({
    "flags": st.lists(st.booleans(), min_size=3, max_size=3),
    "items": st.lists(st.integers(0, 9), max_size=3),
})


def _progress_actions(run: Run) -> list[tuple[str, Any]]:
    actions: list[tuple[str, Any]] = []
    assert run.state is not None
    for s in run.state.steps.values():
        if s.node_type in REPORTED and s.status.attempt_open and s.awaiting is None:
            actions += [("complete", s)] * 3 + [("fail", s)] * 3 + [("fail_permanent", s)]
            if s.status is StepStatus.SCHEDULED:
                actions += [("started", s)] * 2
            if s.node_type == "agent":
                actions += [("pause", s)] * 8
        if s.node_type == "agent" and s.status.attempt_open and s.awaiting is not None:
            actions += [("approve_call", s)] * 2 + [("reject_call", s)]
        if s.node_type == "approval" and s.status.attempt_open:
            actions += [("approve", s)] * 2 + [("reject", s)]
    actions += [("fire", t) for t in run.state.timers.values() for _ in range(2)]
    actions += [("signal", name) for name in SIGNALS]  # early, on time, or for no step
    return actions


def _command(run: Run, action: str, target: Any) -> Command:
    env = run.envelope()
    if action == "complete":
        return CompleteStep(**env, step_id=target.step_id, attempt=target.attempt,
                            output={"from": target.step_id})
    if action in ("fail", "fail_permanent"):
        return FailStep(**env, step_id=target.step_id, attempt=target.attempt, error_type="E",
                        message="m", retryable=action == "fail")
    if action == "started":
        return ReportStepStarted(**env, step_id=target.step_id, attempt=target.attempt)
    if action == "fire":
        run.now = max(run.now, target.fire_at)
        return FireTimer(**env, timer_id=target.timer_id)
    if action in ("approve", "reject"):
        return DecideApproval(**env, step_id=target.step_id, approved=action == "approve",
                              decided_by="key:k", answer={"ok": True})
    if action == "pause":
        return AwaitToolApproval(**env, step_id=target.step_id, attempt=target.attempt,
                                 tool_call_id=f"call-{env['event_id']}",
                                 tool_name="web_search@1", checkpoint={"messages": []})
    if action in ("approve_call", "reject_call"):
        call = target.awaiting.tool_call_id if target.awaiting else "none"
        return DecideApproval(**env, step_id=target.step_id, tool_call_id=call,
                              approved=action == "approve_call", decided_by="key:k")
    if action == "signal":
        return SignalRun(**env, name=target, payload={"name": target})
    if action == "cancel_step":
        return CancelStep(**env, step_id=target.step_id)
    return CancelRun(**env, reason="random")


def _drive(run: Run, data: Any, sent: list[tuple[Command, bool]]) -> None:
    """Random outcomes and mischief for a while."""
    for _ in range(data.draw(st.integers(0, 40), label="random actions")):
        if run.state is None or run.state.is_finished:
            return
        run.now += timedelta(seconds=1)
        mode = data.draw(st.sampled_from(["progress"] * 8 + ["redeliver", "stale",
                                                             "cancel_step", "cancel_run"]))
        if mode == "redeliver" and sent:
            cmd, was_accepted = data.draw(st.sampled_from(sent))
            decision = run.send(cmd)
            if was_accepted:
                assert isinstance(decision, Rejected), f"redelivered {cmd} was accepted again"
            continue
        if mode == "stale":
            open_tools = [s for s in run.state.steps.values() if s.node_type in REPORTED]
            if open_tools:
                s = data.draw(st.sampled_from(open_tools))
                stale = CompleteStep(**run.envelope(), step_id=s.step_id, attempt=s.attempt + 1)
                assert isinstance(run.send(stale), Rejected)
            continue
        if mode == "cancel_step":
            opened = run.state.open_steps()
            if opened:
                target = data.draw(st.sampled_from(opened))
                cmd = _command(run, "cancel_step", target)
                sent.append((cmd, isinstance(run.send(cmd), Accepted)))
            continue
        if mode == "cancel_run":
            if data.draw(st.integers(0, 3)) == 0:  # rarely: most runs should get further
                cmd = _command(run, "cancel_run", None)
                sent.append((cmd, isinstance(run.send(cmd), Accepted)))
            continue
        actions = _progress_actions(run)
        if actions:
            action, target = data.draw(st.sampled_from(actions))
            cmd = _command(run, action, target)
            sent.append((cmd, isinstance(run.send(cmd), Accepted)))


def _finish(run: Run) -> None:
    """Well-behaved executors from here on: every open attempt completes, timers fire in order."""
    for _ in range(500):
        assert run.state is not None
        if run.state.is_finished:
            return
        open_tools = [s for s in run.state.steps.values()
                      if s.node_type in REPORTED and s.status.attempt_open]
        if open_tools:
            s = open_tools[0]
            paused = any(e.event_type == "ToolApprovalRequested" and e.step_id == s.step_id
                         and e.attempt == s.attempt for e in run.log)
            action = "approve_call" if s.awaiting else \
                "pause" if s.node_type == "agent" and not paused else "complete"
            run.ok(_command(run, action, s))  # an agent's attempt pauses once on its way
            continue
        waiting = [s for s in run.state.steps.values()
                   if s.node_type in ("approval", "wait") and s.status.attempt_open]
        if waiting:
            s = waiting[0]
            cmd = _command(run, *(("approve", s) if s.node_type == "approval"
                                  else ("signal", s.input["signal"])))
            if isinstance(run.send(cmd), Accepted):
                continue  # else past its timeout: its timer goes next
        timers = sorted(run.state.timers.values(),
                        key=lambda t: (t.purpose == "run_timeout", t.fire_at, t.timer_id))
        assert timers, f"run is stuck: nothing open, no timer, status {run.state.status}"
        run.ok(_command(run, "fire", timers[0]))
    raise AssertionError("run did not finish within 500 well-behaved commands")


def _check_log(run: Run) -> None:
    assert run.state is not None
    assert [e.seq for e in run.log] == list(range(1, len(run.log) + 1))
    assert len({e.event_id for e in run.log}) == len(run.log)
    replayed, again = fold(run.log), fold(run.log)
    assert replayed == again == run.state
    succeeded = Counter(e.step_id for e in run.log if isinstance(e, StepSucceeded))
    assert all(n == 1 for n in succeeded.values()), succeeded
    _check_cancellations_name_the_attempt_out(run.log)


def _check_cancellations_name_the_attempt_out(log: list[Any]) -> None:
    """A StepCancelled names the attempt that was out (its executor stops it), else 0."""
    out: dict[str, int] = {}
    for e in log:
        match e.event_type:
            case "StepScheduled":
                out[e.step_id] = e.attempt
            case "StepSucceeded" | "StepFailed" | "StepTimedOut" | "StepSkipped":
                out.pop(e.step_id, None)
            case "StepCancelled":
                assert e.attempt == out.pop(e.step_id, 0), (e, out)


def _check_finished_rejects_everything(run: Run) -> None:
    assert run.state is not None
    commands: list[Command] = [
        StartRun(**run.envelope(), definition=run.definition),
        CancelRun(**run.envelope()),
    ]
    for s in run.state.steps.values():
        for action in ("complete", "fail", "started", "cancel_step", "approve", "reject",
                       "pause", "approve_call", "reject_call"):
            commands.append(_command(run, action, s))
    commands += [_command(run, "signal", name) for name in SIGNALS]
    for e in run.log:
        if e.event_type == "TimerSet":
            commands.append(FireTimer(**run.envelope(), timer_id=e.timer_id))
    for cmd in commands:
        assert isinstance(run.send(cmd), Rejected), cmd


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(defn=workflows(), input=INPUTS, data=st.data())
def test_random_runs_replay_exactly_and_always_finish(defn: dict[str, Any], input: Any,
                                                     data: Any) -> None:
    run = Run(definition=defn, input=input)
    start = StartRun(**run.envelope(), input=input, definition=defn)
    sent = [(start, isinstance(run.send(start), Accepted))]
    assert sent[0][1]
    _drive(run, data, sent)
    _check_log(run)
    _finish(run)
    _check_log(run)
    event(f"run {run.state.status.value}")
    event(f"events: {min(len(run.log) // 10 * 10, 60)}+")
    for kind in sorted({e.event_type for e in run.log}):
        event(kind)
    _check_finished_rejects_everything(run)
