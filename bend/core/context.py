"""What a step's expressions see, and the evaluated input a step's attempt is scheduled with.

A step sees `input`, `run`, and under `steps` only the steps it depends on (in `after` or read
by its expressions), each as `{output, status}`; inside a loop also `item` and `index` of the
innermost iteration. Skipped and cancelled steps read as `{output: null, status: ...}`.
"""

from __future__ import annotations

from typing import Any

from bend.core.definitions import WorkflowDefinition
from bend.core.graph import Plan
from bend.core.ids import instance_id
from bend.core.state import RunState

__all__ = ["iteration_context", "resolve", "run_context", "step_context", "step_input"]


def resolve(plan: Plan, step_id: str, indices: tuple[int, ...]) -> str:
    """The instance of `step_id` that a step in iteration `indices` sees."""
    return instance_id(step_id, indices[:plan.depth(step_id)])


def _base(state: RunState) -> dict[str, Any]:
    return {
        "input": state.input,
        "run": {"run_id": state.run_id, "workflow_id": state.workflow_id,
                "workflow_version": state.workflow_version},
        "steps": {},
    }


def _add_steps(ctx: dict[str, Any], state: RunState, plan: Plan, step_ids: Any,
               indices: tuple[int, ...]) -> None:
    for dep in step_ids:
        st = state.step(resolve(plan, dep, indices))
        ctx["steps"][dep] = {"output": st.output, "status": st.status.value}


def _loop_vars(ctx: dict[str, Any], state: RunState, plan: Plan, loop: str | None,
               indices: tuple[int, ...]) -> None:
    if loop is None or not indices:
        return
    loop_state = state.step(instance_id(loop, indices[:-1]))
    items = loop_state.input.get("items") if isinstance(loop_state.input, dict) else None
    ctx["index"] = indices[-1]
    ctx["item"] = items[indices[-1]] if isinstance(items, list) and indices[-1] < len(items) \
        else None


def step_context(state: RunState, plan: Plan, step_id: str,
                 indices: tuple[int, ...]) -> dict[str, Any]:
    """The context of `step_id`'s own expressions in iteration `indices`."""
    ctx = _base(state)
    _add_steps(ctx, state, plan, plan.deps[step_id], indices)
    _loop_vars(ctx, state, plan, plan.scope[step_id], indices)
    return ctx


def iteration_context(state: RunState, plan: Plan, loop: str,
                      indices: tuple[int, ...]) -> dict[str, Any]:
    """The context of a loop's `collect` in its iteration `indices` (the last index is its own)."""
    ctx = _base(state)
    _add_steps(ctx, state, plan, plan.deps[loop], indices[:-1])
    _add_steps(ctx, state, plan, plan.scope_steps[loop], indices)
    _loop_vars(ctx, state, plan, loop, indices)
    return ctx


def run_context(state: RunState, plan: Plan) -> dict[str, Any]:
    """The context of the run's `output`: every step outside loops."""
    ctx = _base(state)
    _add_steps(ctx, state, plan, plan.scope_steps[None], ())
    return ctx


def step_input(defn: WorkflowDefinition, node: Any, ctx: dict[str, Any]) -> Any:
    """The evaluated configuration an executor (or a child run) receives in StepScheduled.input.

    Each step model renders its own (`task_input` in bend/core/nodes.py); the step's timeout
    travels beside it, in StepScheduled.timeout_ms.
    """
    return node.task_input(ctx, defn.llm)
