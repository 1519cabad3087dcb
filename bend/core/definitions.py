"""Workflow definitions: frozen pydantic models of a workflow and its steps, loaded from YAML or JSON.

A workflow is a flat list of steps, each with a unique `id`. Containers name their members by
id: a condition's `then`/`else`/`cases`, a parallel's `branches`, a loop's `body`. A step runs
once the steps it depends on have finished: those in `after` and those its expressions read
(`steps.<id>.output`). Which fields are expressions and which are templates: see expressions.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints,
    ValidationError, field_validator, model_validator,
)

from bend.core.durations import parse_duration
from bend.core.problems import InvalidDefinition, Problem

__all__ = [
    "AgentStep", "ConditionStep", "DelayStep", "Defaults", "EXECUTOR_NODE_TYPES", "HttpStep",
    "InvalidDefinition", "LlmEndpoint", "LoopStep", "NODE_TYPES", "ParallelStep", "Problem",
    "RetryPolicy", "StepDefinition", "SubworkflowStep", "ToolStep", "TransformStep",
    "WorkflowDefinition", "definition_hash", "definition_json", "load_definition",
    "parse_definition", "validate",
]

EXECUTOR_NODE_TYPES = frozenset({"agent", "tool", "http"})  # run by executors, not the engine
NODE_TYPES = ("agent", "tool", "http", "transform", "condition", "loop", "parallel", "delay",
              "subworkflow")


def _duration_text(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value}s"  # bare numbers are seconds
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_check_duration)]
StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)]
ComponentRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.-]*@[\w.-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RetryPolicy(_Model):
    """How often and how fast a failed step is tried again (`max_attempts` counts the first)."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_interval: Duration = "1s"
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    max_interval: Duration = "5m"
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)  # ± this fraction of each delay
    retry_on: tuple[str, ...] | None = None  # only these error types retry (None: any)
    non_retryable: tuple[str, ...] = ()  # these error types never retry


class LlmEndpoint(_Model):
    """An OpenAI-compatible endpoint: its base URL and the NAME of the secret holding its key."""

    base_url: str = Field(min_length=1)  # template (the workflow's reads only input and run)
    api_key_secret: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)


class _Step(_Model):
    id: StepId
    description: str = ""
    after: tuple[str, ...] = ()  # explicit dependencies, besides the steps expressions read
    when: str | None = None  # guard expression: the step is skipped when it is false
    retry: RetryPolicy | None = None  # executor and subworkflow steps only
    timeout: Duration | None = None  # executor and subworkflow steps only

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        """`(location, "expression" | "template", value)` of every expression the step holds."""
        if self.when is not None:
            yield "when", "expression", self.when


class AgentStep(_Step):
    """A model with tools in a loop (an executor step)."""

    type: Literal["agent"]
    model: str = Field(min_length=1)
    system_prompt: str | None = None  # template
    prompt: str  # template
    tools: tuple[str, ...] = ()  # component refs `name@version`
    max_iterations: int = Field(default=10, ge=1, le=100)
    temperature: float | None = Field(default=None, ge=0, le=2)
    llm: LlmEndpoint | None = None  # default: the workflow's `llm`

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        if self.system_prompt is not None:
            yield "system_prompt", "template", self.system_prompt
        yield "prompt", "template", self.prompt
        if self.llm is not None:
            yield "llm.base_url", "template", self.llm.base_url


class ToolStep(_Step):
    """One call of a registered component (an executor step)."""

    type: Literal["tool"]
    component: ComponentRef
    inputs: dict[str, Any] = Field(default_factory=dict)  # templates

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        yield "inputs", "template", self.inputs


class HttpStep(_Step):
    """One HTTP request; a non-2xx answer fails the attempt (an executor step)."""

    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str  # template
    headers: dict[str, Any] = Field(default_factory=dict)  # templates
    query: dict[str, Any] = Field(default_factory=dict)  # templates
    body: Any = None  # template

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        yield "url", "template", self.url
        yield "headers", "template", self.headers
        yield "query", "template", self.query
        yield "body", "template", self.body


class TransformStep(_Step):
    """Computes its output from an `expression`, or a `mapping` of names to expressions."""

    type: Literal["transform"]
    expression: str | None = None
    mapping: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> TransformStep:
        if (self.expression is None) == (self.mapping is None):
            raise ValueError("a transform needs exactly one of `expression` or `mapping`")
        return self

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        if self.expression is not None:
            yield "expression", "expression", self.expression
        for key, expr in (self.mapping or {}).items():
            yield f"mapping.{key}", "expression", expr


def _case_keys(value: Any) -> Any:
    if isinstance(value, dict):  # YAML reads `1:` and `true:` as numbers and booleans
        return {json.dumps(k) if not isinstance(k, str) else k: v for k, v in value.items()}
    return value


class ConditionStep(_Step):
    """if/else (`if`, `then`, `else`) or switch (`switch`, `cases`, `default`) over step ids."""

    type: Literal["condition"]
    if_: str | None = Field(default=None, alias="if")
    then: tuple[str, ...] = ()
    else_: tuple[str, ...] = Field(default=(), alias="else")
    switch: str | None = None
    cases: Annotated[dict[str, tuple[str, ...]], BeforeValidator(_case_keys)] = Field(
        default_factory=dict)  # keys match the switch value's text ("a", "3", "true")
    default: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_form(self) -> ConditionStep:
        if (self.if_ is None) == (self.switch is None):
            raise ValueError("a condition needs exactly one of `if` or `switch`")
        if self.if_ is not None and (self.cases or self.default):
            raise ValueError("`cases` and `default` go with `switch`, not `if`")
        if self.switch is not None and (self.then or self.else_):
            raise ValueError("`then` and `else` go with `if`, not `switch`")
        return self

    def arms(self) -> dict[str, tuple[str, ...]]:
        """Each arm's name (then, else, case:<key>, default) and its step ids."""
        if self.if_ is not None:
            return {"then": self.then, "else": self.else_}
        return {**{f"case:{k}": v for k, v in self.cases.items()}, "default": self.default}

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        if self.if_ is not None:
            yield "if", "expression", self.if_
        if self.switch is not None:
            yield "switch", "expression", self.switch


class LoopStep(_Step):
    """Runs its `body` steps once per item of `for_each`, or while `while` holds."""

    type: Literal["loop"]
    for_each: str | None = None
    while_: str | None = Field(default=None, alias="while")  # reads index, last, results
    body: tuple[str, ...] = Field(min_length=1)
    concurrency: int = Field(default=4, ge=1, le=1000)  # for_each iterations at once
    max_iterations: int = Field(default=1000, ge=1, le=100_000)
    collect: str | None = None  # an iteration's result (default: its body sinks' outputs)

    @model_validator(mode="after")
    def _one_form(self) -> LoopStep:
        if (self.for_each is None) == (self.while_ is None):
            raise ValueError("a loop needs exactly one of `for_each` or `while`")
        return self

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        if self.for_each is not None:
            yield "for_each", "expression", self.for_each
        if self.while_ is not None:
            yield "while", "expression", self.while_
        if self.collect is not None:
            yield "collect", "expression", self.collect


class ParallelStep(_Step):
    """Starts its `branches` together and finishes when `join` is met (all, any, first_n)."""

    type: Literal["parallel"]
    branches: tuple[tuple[str, ...], ...] = Field(min_length=1)
    join: Literal["all", "any", "first_n"] = "all"
    n: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _join(self) -> ParallelStep:
        if self.join == "first_n" and self.n is None:
            raise ValueError("join `first_n` needs `n`, the number of branches to wait for")
        if self.join != "first_n" and self.n is not None:
            raise ValueError("`n` goes with join `first_n`")
        if self.n is not None and self.n > len(self.branches):
            raise ValueError(f"`n` is {self.n} but there are {len(self.branches)} branches")
        if any(not branch for branch in self.branches):
            raise ValueError("every branch needs at least one step")
        return self

    @property
    def needed(self) -> int:
        """How many branches must finish before the join is met."""
        return {"all": len(self.branches), "any": 1}.get(self.join, self.n or 1)


class DelayStep(_Step):
    """Waits on a durable timer: `duration`, or `until` a timestamp expression."""

    type: Literal["delay"]
    duration: Duration | None = None
    until: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> DelayStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a delay needs exactly one of `duration` or `until`")
        return self

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        if self.until is not None:
            yield "until", "expression", self.until


class SubworkflowStep(_Step):
    """Starts a child run of `workflow` (inline `definition`, or resolved by id and version)."""

    type: Literal["subworkflow"]
    workflow: str = Field(min_length=1)
    version: int | None = Field(default=None, ge=1)
    definition: WorkflowDefinition | None = None
    input: Any = None  # template

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        yield "input", "template", self.input


StepDefinition = Annotated[
    Union[AgentStep, ToolStep, HttpStep, TransformStep, ConditionStep, LoopStep, ParallelStep,
          DelayStep, SubworkflowStep],
    Field(discriminator="type"),
]


class Defaults(_Model):
    """Defaults for executor and subworkflow steps that set none."""

    retry: RetryPolicy | None = None
    timeout: Duration | None = None


class WorkflowDefinition(_Model):
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
        if node.type not in EXECUTOR_NODE_TYPES and node.type != "subworkflow":
            return None
        value = node.timeout or self.defaults.timeout
        return parse_duration(value) if value is not None else None


SubworkflowStep.model_rebuild()


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


def parse_definition(data: Any) -> WorkflowDefinition:
    """The definition in JSON data; InvalidDefinition listing every problem if it is wrong."""
    if not isinstance(data, dict):
        raise InvalidDefinition([Problem("(document)", "a workflow definition is a mapping "
                                         f"with name and steps, not {type(data).__name__}")])
    try:
        defn = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        raise InvalidDefinition(_problems(exc)) from None
    problems = validate(defn)
    if problems:
        raise InvalidDefinition(problems)
    return defn


def load_definition(text: str) -> WorkflowDefinition:
    """The definition in YAML or JSON `text`; InvalidDefinition listing every problem."""
    try:
        data = yaml.safe_load(text)
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
        problems.append(Problem(where or "(document)", message, error["type"]))
    return problems
