"""The cascade: everything the engine decides by itself, until only outside work remains.

Each pass walks a scope's steps in topological order. A pending step whose dependencies have
finished begins: transforms and conditions succeed on the spot, a parallel opens its branches,
a loop its iterations, a delay sets a timer, and agent/tool/http/subworkflow steps are
scheduled for an executor or a child run. Steps whose gate was not taken, or whose dependencies
were all skipped, are skipped. Passes repeat until nothing changes; then, if every top-level
step has finished, the run completes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bend.core import ids
from bend.core.commands import StartRun
from bend.core.context import iteration_context, resolve, run_context, step_context, step_input
from bend.core.definitions import definition_json
from bend.core.draft import Draft
from bend.core.durations import parse_duration, parse_timestamp
from bend.core.events import RunCompleted, StepScheduled, StepSkipped, StepSucceeded, TimerSet
from bend.core.expressions import ExpressionError, evaluate, truthy
from bend.core.graph import Plan
from bend.core.outcomes import cancel_instance, fail_attempt, fail_run, notify_parent
from bend.core.state import RunState, RunStatus, StepStatus

__all__ = ["advance", "schedule_attempt"]

_WAIT = object()
_GO = object()
_HAS_START = ("parallel", "loop")


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
        inst = ids.instance_id(step_id, indices)
        st = d.run.steps.get(inst)
        if st is None and (phase == "start" or node.type not in _HAS_START):
            changed |= _try_begin(d, node, inst, indices)
        elif st is not None and phase == "end" and node.type in _HAS_START \
                and st.status is StepStatus.SCHEDULED:
            changed |= (_join(d, node, inst, indices) if node.type == "parallel"
                        else _iterate(d, node, inst, indices))
    return changed


def _readiness(state: RunState, plan: Plan, node: Any, indices: tuple[int, ...]) -> object:
    """_WAIT, _GO, or the reason (str) the step is skipped."""
    gate = plan.gate.get(node.id)
    if gate is not None:
        container, slot = gate
        c = state.step(resolve(plan, container, indices))
        kind = plan.nodes[container].type
        if kind == "condition":
            if not c.status.finished:
                return _WAIT
            if c.status is not StepStatus.SUCCEEDED:
                return f"condition {container!r} was {c.status.value}"
            taken = _arm(plan.nodes[container], c.output)
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


def _arm(node: Any, output: Any) -> str:
    """The slot a finished condition took, from its recorded output."""
    output = output if isinstance(output, dict) else {}
    if node.if_ is not None:
        return "then" if output.get("branch") == "then" else "else"
    return f"case:{output.get('branch')}" if output.get("matched") else "default"


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
        _begin(d, node, inst, ctx)
    except ExpressionError as exc:
        _engine_step_failed(d, node, inst, "ExpressionError", exc.message)
    return True


def _engine_step_failed(d: Draft, node: Any, inst: str, error_type: str, message: str) -> None:
    """A step the engine evaluates failed: no retry can change a pure function's answer."""
    if not d.run.step(inst).status.attempt_open:
        _scheduled(d, node, inst, 1, None)
    fail_attempt(d, inst, error_type, message, retryable=False)


def _scheduled(d: Draft, node: Any, inst: str, attempt: int, input: Any,
               timeout_ms: int | None = None) -> None:
    d.emit(StepScheduled, step_id=inst, node_type=node.type, attempt=attempt, input=input,
           idempotency_key=ids.idempotency_key(d.run.run_id, inst, attempt),
           timeout_ms=timeout_ms)


def _begin(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    kind = node.type
    if kind == "transform":
        output = (evaluate(node.expression, ctx) if node.expression is not None
                  else {k: evaluate(v, ctx) for k, v in node.mapping.items()})
        _scheduled(d, node, inst, 1, None)
        d.emit(StepSucceeded, step_id=inst, attempt=1, output=output)
    elif kind == "condition":
        output = _choose(node, ctx)
        _scheduled(d, node, inst, 1, None)
        d.emit(StepSucceeded, step_id=inst, attempt=1, output=output)
    elif kind == "parallel":
        _scheduled(d, node, inst, 1, None)
    elif kind == "loop":
        _begin_loop(d, node, inst, ctx)
    elif kind == "delay":
        _begin_delay(d, node, inst, ctx)
    else:
        defn = d.run.definition
        assert defn is not None
        schedule_attempt(d, node, inst, 1, step_input(defn, node, ctx))


def _choose(node: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    if node.if_ is not None:
        value = evaluate(node.if_, ctx)
        return {"branch": "then" if truthy(value) else "else", "value": value}
    value = evaluate(node.switch, ctx)
    key = value if isinstance(value, str) else json.dumps(value)  # as the case keys are written
    if key in node.cases:
        return {"branch": key, "matched": True, "value": value}
    return {"branch": "default", "matched": False, "value": value}


def schedule_attempt(d: Draft, node: Any, inst: str, attempt: int, spec: Any) -> None:
    """Hand attempt `attempt` of an executor or subworkflow step out, with its timeout timer."""
    defn = d.run.definition
    assert defn is not None
    timeout = defn.step_timeout(node)
    if node.type == "subworkflow":
        spec = {**spec, "child_run_id": ids.child_run_id(d.run.run_id, inst, attempt)}
    _scheduled(d, node, inst, attempt, spec,
               int(timeout.total_seconds() * 1000) if timeout else None)
    if timeout is not None:
        d.emit(TimerSet, timer_id=ids.timer_id(d.run.run_id, "step_timeout", inst, attempt),
               purpose="step_timeout", fire_at=d.now + timeout, step_id=inst)
    if node.type == "subworkflow":
        d.send(StartRun, spec["child_run_id"], workflow_id=node.workflow,
               workflow_version=node.version or 0, input=spec["input"],
               definition=definition_json(node.definition) if node.definition else None,
               idempotency_key=ids.idempotency_key(d.run.run_id, inst, attempt),
               parent_run_id=d.run.run_id, parent_step_id=inst)


def _begin_delay(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    if node.duration is not None:
        fire_at = d.now + parse_duration(node.duration)
    else:
        value = evaluate(node.until, ctx)
        try:
            fire_at = parse_timestamp(value)
        except ValueError as exc:
            raise ExpressionError(node.until, str(exc)) from None
    _scheduled(d, node, inst, 1, {"fire_at": _iso(fire_at)})
    if fire_at <= d.now:
        d.emit(StepSucceeded, step_id=inst, attempt=1, output={"waited_until": _iso(fire_at)})
    else:
        d.emit(TimerSet, timer_id=ids.timer_id(d.run.run_id, "delay", inst, 1), purpose="delay",
               fire_at=fire_at, step_id=inst)


def _iso(at: datetime) -> str:
    return at.isoformat()


def _begin_loop(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    if node.for_each is None:
        _scheduled(d, node, inst, 1, {"items": None})
        return
    items = evaluate(node.for_each, ctx)
    if not isinstance(items, list):
        raise ExpressionError(node.for_each, f"for_each gave {type(items).__name__}, not a list")
    if len(items) > node.max_iterations:
        _engine_step_failed(d, node, inst, "TooManyIterations", (
            f"for_each gave {len(items)} items, more than max_iterations {node.max_iterations}"))
        return
    _scheduled(d, node, inst, 1, {"items": items})


def _join(d: Draft, node: Any, inst: str, indices: tuple[int, ...]) -> bool:
    members = [[ids.instance_id(m, indices) for m in branch] for branch in node.branches]
    done = [b for b, branch in enumerate(members)
            if all(d.run.step(m).status.finished for m in branch)]
    if len(done) < node.needed:
        return False
    for b, branch in enumerate(members):
        if b not in done:
            for m in branch:
                if d.run.step(m).status.open:
                    cancel_instance(d, m, f"parallel {node.id!r} joined ({node.join})")
    results = [{m.split("[")[0]: d.run.step(m).output for m in branch} if b in done else None
               for b, branch in enumerate(members)]
    d.emit(StepSucceeded, step_id=inst, attempt=1, output={"completed": done, "results": results})
    return True


def _iterate(d: Draft, node: Any, inst: str, indices: tuple[int, ...]) -> bool:
    """Advance a loop's iterations, start new ones within its limits, finish it when done."""
    plan, loop = d.plan, node.id

    def started(i: int) -> bool:
        return any(ids.instance_id(r, (*indices, i)) in d.run.steps for r in plan.roots[loop])

    def done(i: int) -> bool:
        return all(d.run.step(ids.instance_id(s, (*indices, i))).status.finished
                   for s in plan.scope_steps[loop])

    changed, count, running = False, 0, []
    while started(count):
        count += 1
    for i in range(count):
        if not done(i):
            changed |= _scope_pass(d, loop, (*indices, i))
            if not _running(d):
                return True
            if not done(i):
                running.append(i)
    items = d.run.step(inst).input["items"]
    try:
        while True:
            if items is not None:  # for_each: up to `concurrency` iterations at once
                may_start = count < len(items) and len(running) < node.concurrency
            else:  # while: one at a time, each after the condition holds again
                may_start = (not running and count < node.max_iterations
                             and _while_holds(d, node, indices, count))
            if not may_start:
                break
            _scope_pass(d, loop, (*indices, count))
            changed = True
            if not _running(d):
                return True
            if not done(count):
                running.append(count)
            count += 1
        if not running and (items is None or count == len(items)):
            results = [_result(d, node, indices, i) for i in range(count)]
            d.emit(StepSucceeded, step_id=inst, attempt=1, output=results)
            return True
    except ExpressionError as exc:
        _engine_step_failed(d, node, inst, "ExpressionError", exc.message)
        return True
    return changed


def _while_holds(d: Draft, node: Any, indices: tuple[int, ...], count: int) -> bool:
    ctx = step_context(d.run, d.plan, node.id, indices)
    results = [_result(d, node, indices, i) for i in range(count)]
    ctx.update(index=count, last=results[-1] if results else None, results=results)
    return truthy(evaluate(node.while_, ctx))


def _result(d: Draft, node: Any, indices: tuple[int, ...], i: int) -> Any:
    """Iteration `i`'s result: `collect`, else its sink steps' outputs by id."""
    if node.collect is not None:
        return evaluate(node.collect, iteration_context(d.run, d.plan, node.id, (*indices, i)))
    return {s: d.run.step(ids.instance_id(s, (*indices, i))).output
            for s in d.plan.sinks[node.id]}


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
