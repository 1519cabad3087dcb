"""Workflow definitions: frozen pydantic models of a workflow and its steps, from YAML or JSON.

A workflow is a flat list of steps, each with a unique `id`. Containers name their members by
id: a condition's `then`/`else`/`cases`, a parallel's `branches`, a loop's `body`. A step runs
once the steps it depends on have finished: those in `after` and those its expressions read
(`steps.<id>.output`). Which fields are expressions and which are templates: see expressions.py.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, ValidationError

from bend.core.depth import MAX_DEPTH, deeper_than
from bend.core.durations import parse_duration
from bend.core.kinds import EXECUTOR_NODE_TYPES, NODE_KINDS, NODE_TYPES
from bend.core.nodes import (
    AgentStep, ConditionStep, DelayStep, Duration, FrozenModel, HttpStep, LlmEndpoint, LoopStep,
    ParallelStep, RetryPolicy, SubworkflowStep, ToolStep, TransformStep,
)
from bend.core.problems import InvalidDefinition, Problem

__all__ = [
    "AgentStep", "ConditionStep", "DelayStep", "Defaults", "EXECUTOR_NODE_TYPES", "HttpStep",
    "InvalidDefinition", "LlmEndpoint", "LoopStep", "NODE_TYPES", "ParallelStep", "Problem",
    "RetryPolicy", "StepDefinition", "SubworkflowStep", "ToolStep", "TransformStep",
    "WorkflowDefinition", "definition_hash", "definition_json", "load_definition",
    "parse_definition", "parse_shape", "validate",
]

# Any step: the model of its `type`, one per row of the table of node kinds (bend.core.kinds).
StepDefinition = Annotated[
    Union[tuple(kind.model for kind in NODE_KINDS.values())],  # type: ignore[valid-type]
    Field(discriminator="type"),
]


class Defaults(FrozenModel):
    """Defaults for executor and subworkflow steps that set none."""

    retry: RetryPolicy | None = None
    timeout: Duration | None = None


class WorkflowDefinition(FrozenModel):
    """A whole workflow: its steps, its input's JSON Schema, its output, timeout and defaults."""

    name: str = Field(min_length=1)
    description: str = ""
    input_schema: dict[str, Any] | None = None
    steps: tuple[StepDefinition, ...] = Field(min_length=1)
    output: str | None = None  # expression (default: the outputs of the sink steps)
    timeout: Duration | None = None  # the whole run's
    defaults: Defaults = Field(default_factory=Defaults)
    llm: LlmEndpoint | None = None  # default endpoint of agent steps

    def step(self, step_id: str) -> StepDefinition:
        """The step with this id; KeyError if there is none."""
        for node in self.steps:
            if node.id == step_id:
                return node
        raise KeyError(step_id)

    def retry_policy(self, node: StepDefinition) -> RetryPolicy:
        """The step's retry policy, else the workflow default, else the built-in one."""
        return node.retry or self.defaults.retry or RetryPolicy()

    def step_timeout(self, node: StepDefinition) -> timedelta | None:
        """The step's timeout, else the workflow default (executor and subworkflow steps only)."""
        if not NODE_KINDS[node.type].retried:
            return None
        value = node.timeout or self.defaults.timeout
        return parse_duration(value) if value is not None else None


SubworkflowStep.model_rebuild(_types_namespace={"WorkflowDefinition": WorkflowDefinition})


def definition_json(defn: WorkflowDefinition) -> dict[str, Any]:
    """The definition as canonical JSON data (aliases, no nulls), as runs carry it."""
    return defn.model_dump(mode="json", by_alias=True, exclude_none=True)


def definition_hash(defn: WorkflowDefinition) -> str:
    """sha256 of the definition's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(definition_json(defn), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def validate(defn: WorkflowDefinition) -> list[Problem]:
    """Every problem of a well-formed definition: references, cycles, branches, expressions."""
    from bend.core.graph import analyze  # graph reads these models; imported late to avoid a cycle

    return analyze(defn).problems


def parse_shape(data: Any) -> WorkflowDefinition:
    """The definition in JSON data, checked field by field only (no references or cycles)."""
    if not isinstance(data, dict):
        raise InvalidDefinition([Problem("(document)", "a workflow definition is a mapping "
                                         f"with name and steps, not {type(data).__name__}")])
    try:
        defn = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        raise InvalidDefinition(_problems(exc)) from None
    return defn


def parse_definition(data: Any) -> WorkflowDefinition:
    """The definition in JSON data; InvalidDefinition listing every problem if it is wrong."""
    if deeper_than(data):
        raise InvalidDefinition([Problem("(document)", f"it nests objects and lists more than "
                                         f"{MAX_DEPTH} levels deep; flatten it", "depth")])
    defn = parse_shape(data)
    problems = validate(defn)
    if problems:
        raise InvalidDefinition(problems)
    return defn


def load_definition(text: str) -> WorkflowDefinition:
    """The definition in YAML or JSON `text`; InvalidDefinition listing every problem."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise InvalidDefinition([Problem("(document)", f"it nests more than {MAX_DEPTH} levels "
                                         "deep; flatten it", "depth")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        reason = getattr(exc, "problem", None) or str(exc)
        raise InvalidDefinition([Problem(where, f"not valid YAML or JSON: {reason}",
                                         "syntax")]) from None
    return parse_definition(data)


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    errors = exc.errors()
    for error in errors:
        loc = list(error["loc"])
        if loc == ["steps"] and error["type"] == "too_short" and any(
                e["loc"][:1] == ("steps",) and len(e["loc"]) > 1 for e in errors):
            continue  # pydantic's echo of a step that failed: the step's own error says it all
        # A discriminated union adds the node type after `steps[i]`; it is noise to a reader.
        if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int) and loc[2] in NODE_TYPES:
            del loc[2]
        where = ""
        for part in loc:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            message = (f"unknown step type {error['input'].get('type')!r}; use one of "
                       f"{', '.join(NODE_TYPES)}")
        elif error["type"] == "union_tag_not_found":
            message = f"a step needs a `type`: one of {', '.join(NODE_TYPES)}"
        elif error["type"] == "string_type" and isinstance(error.get("input"), bool):
            message += (f" (YAML read {error['input']!r} from an unquoted yes/no/on/off/true/"
                        "false; quote it)")
        problems.append(Problem(where or "(document)", message, error["type"]))
    return problems
