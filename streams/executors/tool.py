"""The tool executor: calls a registered component with the step's validated inputs."""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from bend.components import Component, ComponentContext, ComponentError
from bend.core.events import StepScheduled
from bend.tracing import component_span
from streams.executors.context import ExecutionContext
from streams.executors.errors import StepError, ToolFailed
from streams.executors.inputs import parse_input
from streams.executors.outcome import StepOutcome

__all__ = ["ToolInput", "component_context", "execute", "invoke_component", "parse"]

log = structlog.get_logger(__name__)


class ToolInput(BaseModel):
    """A tool node's evaluated configuration: which component, with which inputs."""

    model_config = ConfigDict(extra="ignore")

    component: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


def parse(value: Any) -> ToolInput:
    """The task's input as a `ToolInput`."""
    return parse_input(ToolInput, "tool", value)


def component_context(task: StepScheduled, suffix: str = "") -> ComponentContext:
    """The call's context; `suffix` keeps an agent's several calls' keys apart."""
    key = f"{task.idempotency_key}:{suffix}" if suffix and task.idempotency_key else (
        task.idempotency_key)
    return ComponentContext(idempotency_key=key, run_id=task.run_id, step_id=task.step_id,
                            attempt=task.attempt)


async def invoke_component(comp: Component, inputs: dict[str, Any],
                           context: ComponentContext) -> Any:
    """Call `comp`; its failures become `ToolFailed` (retryable as the component says)."""
    try:
        with component_span(comp.ref):
            return await comp.invoke(inputs, context)
    except ComponentError as exc:
        raise ToolFailed(exc.message, retryable=exc.retryable,
                         error_type=type(exc).__name__) from exc
    except Exception as exc:  # the component's own bug or a transient fault: let policy retry
        log.warning("component_raised", component=comp.ref, error_type=type(exc).__name__)
        raise ToolFailed(f"component {comp.ref} raised {type(exc).__name__}: {exc}; it is "
                         "retried, raise ComponentFailed(retryable=False) for errors a retry "
                         "cannot fix", retryable=True, error_type=type(exc).__name__) from exc


async def execute(task: StepScheduled, ctx: ExecutionContext) -> StepOutcome:
    """Run the step's component; its output is the step's output."""
    try:
        spec = parse(task.input)
        try:
            comp = ctx.registry.get(spec.component)
        except ComponentError as exc:
            raise ToolFailed(exc.message, retryable=False,
                             error_type=type(exc).__name__) from exc
        output = await invoke_component(comp, spec.inputs, component_context(task))
    except StepError as exc:
        return StepOutcome.failure(exc)
    return StepOutcome.success(output)
