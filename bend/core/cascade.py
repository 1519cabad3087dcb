"""The cascade: everything the engine decides by itself, until only outside work remains.

Each pass walks a scope's steps in topological order. A pending step whose dependencies have
finished begins: transforms and conditions succeed on the spot, a parallel opens its branches,
a loop its iterations, a delay sets a timer, approval and wait steps begin to wait (a wait
takes a signal kept for it), and agent/tool/http/subworkflow steps are
scheduled for an executor or a child run. Steps whose gate was not taken, or whose dependencies
were all skipped, are skipped. Passes repeat until nothing changes; then, if every top-level
step has finished, the run completes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bend.core import ids
from bend.core.awaits import begin_await
from bend.core.budgets import overrun
from bend.core.commands import StartRun
from bend.core.containers import begin_loop, iterate_loop, join_parallel
from bend.core.context import resolve, run_context, step_context, step_input
from bend.core.definitions import definition_json
from bend.core.draft import Draft
from bend.core.durations import parse_duration, parse_timestamp
from bend.core.events import RunCompleted, StepSkipped, StepSucceeded, TimerSet
from bend.core.expressions import ExpressionError, evaluate, truthy
from bend.core.graph import Plan
from bend.core.kinds import NODE_KINDS, Begin, Members, Runner
from bend.core.outcomes import (
    engine_step_failed, fail_attempt, fail_run, notify_parent, scheduled,
)
from bend.core.state import RunState, RunStatus, StepStatus

__all__ = ["advance", "schedule_attempt"]

_WAIT = object()
_GO = object()


def advance(d: Draft) -> None:
    """Begin, skip and join steps until nothing changes; complete the run when all are done."""
    while d.run.status is RunStatus.RUNNING and _scope_pass(d, None, ()):
        pass
    if d.run.status is RunStatus.RUNNING:
        _maybe_complete(d)


def _running(d: Draft) -> bool:
    return d.run.status is RunStatus.RUNNING


def _scope_pass(d: Draft, scope: str | None, indices: tuple[int, ...]) -> bool:
    changed = False
    plan = d.plan
    for step_id, phase in plan.order[scope]:
        if not _running(d):
            return True
        node = plan.nodes[step_id]
        kind = NODE_KINDS[node.type]
        inst = ids.instance_id(step_id, indices)
        st = d.run.steps.get(inst)
        if st is None and (phase == "start" or not kind.has_start):
            changed |= _try_begin(d, node, inst, indices)
        elif st is not None and phase == "end" and kind.has_start \
                and st.status is StepStatus.SCHEDULED:
            changed |= (join_parallel(d, node, inst, indices) if kind.begins is Begin.OPEN
                        else iterate_loop(d, node, inst, indices, _scope_pass))
    return changed


def _readiness(state: RunState, plan: Plan, node: Any, indices: tuple[int, ...]) -> object:
    """_WAIT, _GO, or the reason (str) the step is skipped."""
    gate = plan.gate.get(node.id)
    if gate is not None:
        container, slot = gate
        c = state.step(resolve(plan, container, indices))
        if NODE_KINDS[plan.nodes[container].type].members is Members.ARMS:
            if not c.status.finished:
                return _WAIT
            if c.status is not StepStatus.SUCCEEDED:
                return f"condition {container!r} was {c.status.value}"
            taken = plan.nodes[container].taken(c.output)
            if taken != slot:
                return f"condition {container!r} took {taken!r}, not {slot!r}"
        elif c.status is StepStatus.PENDING:
            return _WAIT
        elif c.status is StepStatus.SUCCEEDED:
            return f"parallel {container!r} had joined before this branch step began"
        elif c.status is not StepStatus.SCHEDULED:
            return f"parallel {container!r} was {c.status.value}"
    deps = [state.step(resolve(plan, dep, indices)) for dep in plan.deps[node.id]]
    if any(not dep.status.finished for dep in deps):
        return _WAIT
    if deps and not any(dep.status is StepStatus.SUCCEEDED for dep in deps):
        return "every step it depends on was skipped or cancelled"
    return _GO


def _try_begin(d: Draft, node: Any, inst: str, indices: tuple[int, ...]) -> bool:
    verdict = _readiness(d.run, d.plan, node, indices)
    if verdict is _WAIT:
        return False
    if isinstance(verdict, str):
        d.emit(StepSkipped, step_id=inst, reason=verdict)
        return True
    ctx = step_context(d.run, d.plan, node.id, indices)
    try:
        if node.when is not None and not truthy(evaluate(node.when, ctx)):
            d.emit(StepSkipped, step_id=inst, reason="its `when` guard is false")
            return True
        if _replays(d.run, d.plan, node):
            _replay(d, node, inst)
        else:
            _begin(d, node, inst, ctx)
    except ExpressionError as exc:
        engine_step_failed(d, node, inst, "ExpressionError", exc.message)
    return True


def _replays(run: RunState, plan: Plan, node: Any) -> bool:
    """Whether a backtest run takes `node`'s recorded output instead of running it: an impure
    step after the step the backtest changed (bend.core.fork.replayed_outputs)."""
    return (run.replayed is not None and run.fork_step_id is not None
            and not NODE_KINDS[node.type].pure and node.id != run.fork_step_id
            and run.fork_step_id in plan.nodes and node.id in plan.rerun_from(run.fork_step_id))


def _replay(d: Draft, node: Any, inst: str) -> None:
    recorded = d.run.replayed
    assert isinstance(recorded, dict)
    if inst not in recorded:
        engine_step_failed(d, node, inst, "NoRecordedOutput", (
            f"the backtest reuses the recorded outputs of the steps after "
            f"{d.run.fork_step_id!r}, and step {inst!r} did not succeed in run "
            f"{d.run.forked_from_run_id}; run the backtest with live_downstream to call it"))
        return
    scheduled(d, node, inst, 1, None)
    d.emit(StepSucceeded, step_id=inst, attempt=1, output=recorded[inst])


def _begin(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    begins = NODE_KINDS[node.type].begins
    if begins is Begin.EVALUATE:
        output = node.output(ctx)
        scheduled(d, node, inst, 1, None)
        d.emit(StepSucceeded, step_id=inst, attempt=1, output=output)
    elif begins is Begin.OPEN:
        scheduled(d, node, inst, 1, None)
    elif begins is Begin.ITERATE:
        begin_loop(d, node, inst, ctx)
    elif begins is Begin.TIMER:
        _begin_delay(d, node, inst, ctx)
    elif begins is Begin.AWAIT:
        begin_await(d, node, inst, ctx)
    else:
        defn = d.run.definition
        assert defn is not None
        schedule_attempt(d, node, inst, 1, step_input(defn, node, ctx))


def schedule_attempt(d: Draft, node: Any, inst: str, attempt: int, spec: Any) -> None:
    """Hand attempt `attempt` of an executor or subworkflow step out, with its timeout timer."""
    defn = d.run.definition
    assert defn is not None
    if NODE_KINDS[node.type].metered and defn.budget is not None:
        usage = d.run.usage
        spent = overrun(defn.budget, usage.tokens, usage.cost_usd)
        if spent is not None:  # no LLM work once the run's budget is spent
            scheduled(d, node, inst, attempt, spec)
            whose = "the run's"
            fail_attempt(d, inst, "BudgetExceeded", f"{spent.text(whose)} by its LLM calls "
                         f"before step {inst} began; raise the workflow's budget",
                         retryable=False)
            return
        spec = {**spec, "run_budget": {**defn.budget.model_dump(exclude_none=True),
                                       "used_tokens": usage.tokens,
                                       "used_cost_usd": usage.cost_usd}}
    timeout = defn.step_timeout(node)
    child = NODE_KINDS[node.type].runner is Runner.CHILD_RUN
    if child:
        spec = {**spec, "child_run_id": ids.child_run_id(d.run.run_id, inst, attempt)}
    scheduled(d, node, inst, attempt, spec,
               int(timeout.total_seconds() * 1000) if timeout else None)
    if timeout is not None:
        d.emit(TimerSet, timer_id=ids.timer_id(d.run.run_id, "step_timeout", inst, attempt),
               purpose="step_timeout", fire_at=d.now + timeout, step_id=inst)
    if child:
        d.send(StartRun, spec["child_run_id"], workflow_id=node.workflow,
               workflow_version=node.version or 0, input=spec["input"],
               definition=definition_json(node.definition) if node.definition else None,
               idempotency_key=ids.idempotency_key(d.run.run_id, inst, attempt),
               parent_run_id=d.run.run_id, parent_step_id=inst, backtest_id=d.run.backtest_id)


def _begin_delay(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    if node.duration is not None:
        fire_at = d.now + parse_duration(node.duration)
    else:
        value = evaluate(node.until, ctx)
        try:
            fire_at = parse_timestamp(value)
        except ValueError as exc:
            raise ExpressionError(node.until, str(exc)) from None
    scheduled(d, node, inst, 1, {"fire_at": _iso(fire_at)})
    if fire_at <= d.now:
        d.emit(StepSucceeded, step_id=inst, attempt=1, output={"waited_until": _iso(fire_at)})
    else:
        d.emit(TimerSet, timer_id=ids.timer_id(d.run.run_id, "delay", inst, 1), purpose="delay",
               fire_at=fire_at, step_id=inst)


def _iso(at: datetime) -> str:
    return at.isoformat()


def _maybe_complete(d: Draft) -> None:
    run, plan = d.run, d.plan
    if not all(run.step(s).status.finished for s in plan.scope_steps[None]):
        return
    defn = run.definition
    assert defn is not None
    if defn.output is not None:
        try:
            output = evaluate(defn.output, run_context(run, plan))
        except ExpressionError as exc:
            fail_run(d, "ExpressionError", f"the run's output: {exc.message}")
            return
    else:
        output = {s: run.step(s).output for s in plan.sinks[None]}
    started = run.started_at or d.now
    d.emit(RunCompleted, output=output, duration_ms=int((d.now - started).total_seconds() * 1000))
    notify_parent(d)
