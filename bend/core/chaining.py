"""Downstream workflows: on a run's end, start other workflows with input mapped from it.

A definition's `downstream` lists them: the workflow (its id or name, in the run's project),
the ends that start it (completed by default), and an expression mapping `{output, input, run}`
to its input (default: the output). `downstream_starts(...)` says which runs one end owes, each
with a run id derived from the ended run's id and the entry's place, so an end read twice starts
each downstream run once; the child's StartRun names the run that triggered it. Pure: the
starting is streams/chaining.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from bend.core.events import Event, RunCancelled, RunCompleted, RunFailed
from bend.core.expressions import ExpressionError, compile_expression, evaluate
from bend.core.nodes import FrozenModel

__all__ = ["Downstream", "DownstreamStart", "downstream_run_id", "downstream_starts",
           "trigger_of"]


class Downstream(FrozenModel):
    """A workflow a run's end starts, with an input mapped from the run."""

    workflow: str = Field(min_length=1, max_length=200)  # its id or name, in the same project
    on_end: tuple[Literal["completed", "failed", "cancelled"], ...] = Field(
        default=("completed",), min_length=1)
    input: str | None = None  # expression over {output, input, run}; None: the output

    @field_validator("input")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_expression(value)
            except ExpressionError as exc:
                raise ValueError(exc.message) from None
        return value


@dataclass(frozen=True, slots=True)
class DownstreamStart:
    """One downstream run an end owes: its run id, the workflow, and its input (or why none)."""

    index: int
    run_id: str
    workflow: str
    input: Any = None
    error: str | None = None  # the input mapping failed: nothing is started


def downstream_run_id(run_id: str, index: int) -> str:
    """The id of the run the `index`-th downstream entry starts when `run_id` ends."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}:downstream:{index}"))


def trigger_of(run_id: str) -> str:
    """The trigger_id a downstream run records: the run whose end started it."""
    return f"downstream:{run_id}"


def _status(event: Event) -> str | None:
    match event:
        case RunCompleted():
            return "completed"
        case RunFailed():
            return "failed"
        case RunCancelled():
            return "cancelled"
    return None


def downstream_starts(event: Event, run_input: Any,
                      downstream: tuple[Downstream, ...] | None) -> list[DownstreamStart]:
    """The downstream runs the run end `event` owes (none for any other event)."""
    status = _status(event)
    if status is None or not event.run_id or not downstream:
        return []
    output = event.output if isinstance(event, RunCompleted) else None
    error = {"error_type": event.error_type, "message": event.message} \
        if isinstance(event, RunFailed) else None
    context = {"output": output, "input": run_input,
               "run": {"run_id": event.run_id, "workflow_id": event.workflow_id,
                       "workflow_version": event.workflow_version, "status": status,
                       "error": error}}
    out = []
    for index, entry in enumerate(downstream):
        if status not in entry.on_end:
            continue
        run_id = downstream_run_id(event.run_id, index)
        try:
            mapped = output if entry.input is None else evaluate(entry.input, context)
        except ExpressionError as exc:
            out.append(DownstreamStart(index, run_id, entry.workflow, error=exc.message))
            continue
        out.append(DownstreamStart(index, run_id, entry.workflow, mapped))
    return out
