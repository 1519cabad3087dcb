"""Parallels and loops: joining branches, and running a loop's iterations within its limits.

A loop's iteration i holds one instance of each of its body steps, named `<step>[i]` (see
ids.py). Iterations start in index order, so "iteration i has started" is "an instance of one of
the body's first steps exists", and the started count is found by bisection. Only an iteration
that the decision under way touched can have a step that just became ready, and an iteration is
running exactly when one of its instances is open: a pass looks at those alone, so a decision
costs the same however many iterations have already finished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bend.core import ids
from bend.core.context import iteration_context, step_context
from bend.core.draft import Draft
from bend.core.events import StepSucceeded
from bend.core.expressions import ExpressionError, evaluate, truthy
from bend.core.outcomes import cancel_instance, engine_step_failed, scheduled
from bend.core.state import RunStatus, StepStatus

__all__ = ["begin_loop", "iterate_loop", "join_parallel"]

ScopePass = Callable[[Draft, str | None, tuple[int, ...]], bool]


def join_parallel(d: Draft, node: Any, inst: str, indices: tuple[int, ...]) -> bool:
    """Succeed the parallel once its join is met, cancelling what is still open in the rest.

    A branch counts toward `any` and `first_n` when all its steps finished and one succeeded (a
    branch skipped whole did no work); if every branch finishes first, the join is met anyway.
    In a backtest that reuses recorded outputs, the branch holding the changed step is waited
    for: recorded branches end at once, and would otherwise win the race and cancel the very
    step the backtest is about.
    """
    members = [[ids.instance_id(m, indices) for m in branch] for branch in node.branches]
    finished = [all(d.run.step(m).status.finished for m in branch) for branch in members]
    done = [b for b, branch in enumerate(members) if finished[b] and any(
        d.run.step(m).status is StepStatus.SUCCEEDED for m in branch)]
    changing = _changed_step_chain(d)
    waits = any(not finished[b] and changing.intersection(branch)
                for b, branch in enumerate(node.branches))
    if (len(done) < node.needed or waits) and not all(finished):
        return False
    for b, branch in enumerate(members):
        if b not in done:
            for m in branch:
                if d.run.step(m).status.open:
                    cancel_instance(d, m, f"parallel {node.id!r} joined ({node.join})")
    results = [{ids.split_instance(m)[0]: d.run.step(m).output for m in branch}
               if b in done else None for b, branch in enumerate(members)]
    d.emit(StepSucceeded, step_id=inst, attempt=1, output={"completed": done, "results": results})
    return True


def _changed_step_chain(d: Draft) -> frozenset[str]:
    """A replaying backtest's changed step and every container around it (none otherwise)."""
    step = d.run.fork_step_id
    if d.run.replayed is None or step is None or step not in d.plan.nodes:
        return frozenset()
    return frozenset(d.plan.enclosing(step))


def begin_loop(d: Draft, node: Any, inst: str, ctx: dict[str, Any]) -> None:
    """Schedule the loop, recording a for_each's items in its input (iterations read them)."""
    if node.for_each is None:
        scheduled(d, node, inst, 1, {"items": None})
        return
    items = evaluate(node.for_each, ctx)
    if not isinstance(items, list):
        raise ExpressionError(node.for_each, f"for_each gave {type(items).__name__}, not a list")
    if len(items) > node.max_iterations:
        engine_step_failed(d, node, inst, "TooManyIterations", (
            f"for_each gave {len(items)} items, more than max_iterations {node.max_iterations}"))
        return
    scheduled(d, node, inst, 1, {"items": items})


def iterate_loop(d: Draft, node: Any, inst: str, indices: tuple[int, ...],
                 scope_pass: ScopePass) -> bool:
    """Advance the loop's open iterations, start new ones, and finish the loop when all are done."""
    loop = node.id
    changed = False
    count = _started(d, loop, indices)
    # Only an iteration this decision touched can have a step that just became ready; one
    # with an open instance is running whatever happens in this pass.
    touched = sorted(i for i in _iterations(d, loop, indices, d.touched) if i < count)
    for i in touched:
        if not _done(d, loop, indices, i):
            changed |= scope_pass(d, loop, (*indices, i))
            if d.run.status is not RunStatus.RUNNING:
                return True
    running = sorted(_iterations(d, loop, indices, d.run.open_ids)
                     | {i for i in touched if not _done(d, loop, indices, i)})
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
            scope_pass(d, loop, (*indices, count))
            changed = True
            if d.run.status is not RunStatus.RUNNING:
                return True
            if not _done(d, loop, indices, count):
                running.append(count)
            count += 1
        if not running and (items is None or count == len(items)):
            results = [_result(d, node, indices, i) for i in range(count)]
            d.emit(StepSucceeded, step_id=inst, attempt=1, output=results)
            return True
    except ExpressionError as exc:
        engine_step_failed(d, node, inst, "ExpressionError", exc.message)
        return True
    return changed


def _has_started(d: Draft, loop: str, indices: tuple[int, ...], i: int) -> bool:
    return any(ids.instance_id(r, (*indices, i)) in d.run.steps for r in d.plan.roots[loop])


def _started(d: Draft, loop: str, indices: tuple[int, ...]) -> int:
    """How many iterations have started (they start in order: bisect the first that has not)."""
    if not _has_started(d, loop, indices, 0):
        return 0
    low, high = 0, 1
    while _has_started(d, loop, indices, high):
        low, high = high, high * 2
    while high - low > 1:  # low has started, high has not
        mid = (low + high) // 2
        low, high = (mid, high) if _has_started(d, loop, indices, mid) else (low, mid)
    return high


def _iterations(d: Draft, loop: str, indices: tuple[int, ...], instances: Any) -> set[int]:
    """The iterations of the loop instance (`loop` at `indices`) that `instances` belong to."""
    depth = len(indices)
    found = set()
    for inst in instances:
        step_id, idx = ids.split_instance(inst)
        if len(idx) > depth and idx[:depth] == indices \
                and d.plan.chains[step_id][depth:depth + 1] == (loop,):
            found.add(idx[depth])
    return found


def _done(d: Draft, loop: str, indices: tuple[int, ...], i: int) -> bool:
    return all(d.run.step(ids.instance_id(s, (*indices, i))).status.finished
               for s in d.plan.scope_steps[loop])


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
