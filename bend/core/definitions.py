"""Workflow definitions from YAML or JSON, checked whole: the models (bend.core.workflow, each
step the model of its kind in bend.core.nodes) plus every problem the plan finds (graph.py).

A workflow is a flat list of steps, each with a unique `id`. Containers name their members by
id: a condition's `then`/`else`/`cases`, a parallel's `branches`, a loop's `body`. A step runs
once the steps it depends on have finished: those in `after` and those its expressions read
(`steps.<id>.output`). Which fields are expressions and which are templates: see expressions.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from bend.core.depth import MAX_DEPTH, deeper_than
from bend.core.graph import analyze
from bend.core.kinds import EXECUTOR_NODE_TYPES, NODE_TYPES
from bend.core.nodes import (
    AgentStep, ConditionStep, DelayStep, HttpStep, LlmEndpoint, LoopStep, ParallelStep,
    RetryPolicy, SubworkflowStep, ToolStep, TransformStep,
)
from bend.core.problems import InvalidDefinition, Problem
from bend.core.workflow import Defaults, StepDefinition, WorkflowDefinition, parse_shape

__all__ = [
    "AgentStep", "ConditionStep", "DelayStep", "Defaults", "EXECUTOR_NODE_TYPES", "HttpStep",
    "InvalidDefinition", "LlmEndpoint", "LoopStep", "NODE_TYPES", "ParallelStep", "Problem",
    "RetryPolicy", "StepDefinition", "SubworkflowStep", "ToolStep", "TransformStep",
    "WorkflowDefinition", "definition_hash", "definition_json", "load_definition",
    "parse_definition", "parse_shape", "validate",
]


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
    return analyze(defn).problems


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


