"""Forks of random finished runs: a fork at step k executes k and what waits on it, nothing else.

"Before k" follows `bend.core.fork`: a top-level step is reused when it succeeded in the source
and does not wait, directly or not, on k; k, every step downstream of it, and the members of a
re-run container (a loop's body, a condition's arms, a parallel's branches) run again. Executor
work is counted the way an executor sees it: the CompleteStep commands the run accepted; a
person's work likewise: an approval before k is reused as decided, never asked again.
"""

from __future__ import annotations

from typing import Any

from core_harness import Run
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine_properties import INPUTS, _finish, workflows

from bend.core.apply import fold
from bend.core.commands import CompleteStep, DecideApproval, StartRun
from bend.core.decide import Accepted
from bend.core.fork import fork_seed, start_fork
from bend.core.graph import Plan
from bend.core.state import RunStatus


def _top(plan: Plan, step_id: str) -> str:
    """The top-level step a (possibly looped, possibly instance) step belongs to."""
    step_id = step_id.split("[", 1)[0]
    while plan.scope[step_id] is not None:
        step_id = plan.scope[step_id]
    return step_id


def _root(plan: Plan, step_id: str) -> str:
    """The top-level step or container a step belongs to (through loops, arms and branches)."""
    step_id = step_id.split("[", 1)[0]
    while True:
        if plan.scope[step_id] is not None:
            step_id = plan.scope[step_id]
        elif step_id in plan.owner:
            step_id = plan.owner[step_id]
        else:
            return step_id


def _rerun(plan: Plan, step_id: str) -> set[str]:
    todo, seen = [step_id], {step_id}
    while todo:
        for later in plan.downstream[todo.pop()]:
            if later not in seen:
                seen.add(later)
                todo.append(later)
    return seen


def _executed(run: Run) -> list[str]:
    return [c.step_id for c in run.sent if isinstance(c, CompleteStep)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(defn=workflows(), input=INPUTS, data=st.data())
def test_a_fork_at_step_k_executes_only_k_and_what_waits_on_it(defn: dict[str, Any],
                                                               input: Any, data: Any) -> None:
    source = Run(definition=defn, input=input)
    source.ok(StartRun(**source.envelope(), input=input, definition=defn))
    _finish(source)
    assert source.state is not None and source.state.plan is not None
    assume(source.state.status is RunStatus.COMPLETED)
    plan = source.state.plan
    k = data.draw(st.sampled_from(list(plan.scope_steps[None])), label="fork from")
    rerun = _rerun(plan, k)
    seed = fork_seed(source.state, k)

    fork = Run(definition=defn, input=input, run_id="fork-1", now=source.now)
    cmd = StartRun(**fork.envelope(), input=input, definition=defn,
                   forked_from_run_id=source.run_id, fork_step_id=k)
    started = start_fork(cmd, seed, fork.now)
    assert isinstance(started, Accepted), started
    fork.log.extend(started.events)
    fork.state = fold(started.events)
    assert not started.tasks() or all(_top(plan, t.step_id) in rerun for t in started.tasks())
    _finish(fork)

    executed = _executed(fork)
    assert all(_top(plan, s) in rerun for s in executed), (k, executed)  # nothing before k
    asked = [c.step_id for c in fork.sent if isinstance(c, DecideApproval)]
    assert all(_top(plan, s) in rerun for s in asked), (k, asked)  # approvals reused
    again = [s for s in _executed(source) if _top(plan, s) in rerun]
    # Everything from k on runs again, once: the same count under the same containers.
    racing = any(getattr(n, "type", None) == "parallel" and getattr(n, "join", "all") != "all"
                 for n in plan.nodes.values())
    if not racing:  # a parallel joining on "any"/"first_n" may let another branch win
        assert sorted(_root(plan, s) for s in executed) == \
            sorted(_root(plan, s) for s in again), (k, executed, again)
    assert set(seed).isdisjoint(rerun)
    for step_id, output in seed.items():  # reused as recorded
        assert fork.state.step(step_id).output == output == source.state.step(step_id).output
    assert fork.state.status is RunStatus.COMPLETED  # (delays differ: they waited later)
    assert fold(fork.log) == fork.state  # the fork's own log replays to its state
