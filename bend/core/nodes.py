"""Step node models: the configuration of each step type (frozen pydantic, unknown fields refused).

Fields marked "template" may hold `${...}`; "expression" fields are plain JMESPath (see
expressions.py). Retry and timeout apply to executor and subworkflow steps only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from jsonschema.exceptions import SchemaError, best_match
from jsonschema.validators import validator_for
from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints,
    field_validator, model_validator,
)

from bend.core.durations import parse_duration
from bend.core.expressions import as_text, evaluate, render, truthy

if TYPE_CHECKING:  # a subworkflow holds a workflow: resolved in bend/core/workflow.py
    from bend.core.workflow import WorkflowDefinition

__all__ = [
    "AgentStep", "AgentTool", "ApprovalStep", "Approvers", "Awaited", "Budget", "ConditionStep",
    "DelayStep",
    "Duration", "FrozenModel", "HttpStep", "ModelFallback", "Provider",
    "LlmEndpoint", "LoopStep", "ParallelStep", "RetryPolicy", "StepBase", "SubworkflowStep",
    "ToolStep", "TransformStep", "WaitStep", "schema_problem",
    "HttpHeaders", "MCP_SERVER_NAME", "McpServer",
]

Slot = tuple[str, str, tuple[str, ...]]  # (slot name, location in the step, member step ids)


def _duration_text(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value}s"  # bare numbers are seconds
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_check_duration)]
SignalName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.-]*$", max_length=100)]
StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)]
ComponentRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.-]*@[\w.-]+$")]


def _check_schema(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        try:
            validator_for(value).check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    return value


JsonSchema = Annotated[dict[str, Any] | None, AfterValidator(_check_schema)]


def schema_problem(schema: dict[str, Any] | None, value: Any) -> str | None:
    """Why `value` does not match the JSON Schema `schema` (`where: what`), or None if it does."""
    if schema is None:
        return None
    error = best_match(validator_for(schema)(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(value)"
    return f"{where}: {error.message}"


class FrozenModel(BaseModel):
    """Frozen, refuses unknown fields, accepts field names and aliases."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RetryPolicy(FrozenModel):
    """How often and how fast a failed step is tried again (`max_attempts` counts the first)."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_interval: Duration = "1s"
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    max_interval: Duration = "5m"
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)  # ± this fraction of each delay
    retry_on: tuple[str, ...] | None = None  # only these error types retry (None: any)
    non_retryable: tuple[str, ...] = ()  # these error types never retry


Provider = Literal["openai", "anthropic"]


class LlmEndpoint(FrozenModel):
    """A model endpoint: its base URL, the NAME of the secret holding its key, and its API.

    `provider` is the API it speaks: OpenAI chat completions (also what most gateways and local
    servers speak) or Anthropic's Messages API. Unset, the executor's settings choose by model
    name (`BEND_LLM__PROVIDERS`), else OpenAI.
    """

    base_url: str = Field(min_length=1)  # template (the workflow's reads only input and run)
    api_key_secret: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    provider: Provider | None = None
    # How an output_schema is asked for: OpenAI's `response_format`, or an instruction (for
    # OpenAI-compatible servers without it). Default: response_format for openai.
    structured_output: Literal["response_format", "instructions"] | None = None

    def rendered(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """The endpoint as its runner receives it, the base URL rendered in `ctx`."""
        return {"base_url": as_text(render(self.base_url, ctx)),
                "api_key_secret": self.api_key_secret, "timeout_s": self.timeout_s,
                **({"provider": self.provider} if self.provider else {}),
                **({"structured_output": self.structured_output}
                   if self.structured_output else {})}


class Budget(FrozenModel):
    """A ceiling on LLM usage: tokens (prompt and completion) and cost in US dollars.

    An agent step's counts its own calls; a workflow's counts every call of the run. Costs are
    priced from the executors' price table (`BEND_OPS__LLM_PRICES` over the built-in list).
    """

    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> Budget:
        if self.max_tokens is None and self.max_cost_usd is None:
            raise ValueError("a budget needs `max_tokens`, `max_cost_usd` or both")
        return self


class ModelFallback(FrozenModel):
    """A model tried when the ones before it fail with a retryable error or an open circuit."""

    model: str = Field(min_length=1)
    llm: LlmEndpoint | None = None  # default: the step's endpoint


@dataclass(frozen=True, slots=True)
class Awaited:
    """What a begun step that waits for a command from outside waits for, told to people (the
    UI's waiting reasons, explain)."""

    code: str  # the reason's kind: approval, signal
    what: str  # short: "an approval"
    guide: str  # with who may send it and how: "an approval by admin; see `bend approvals list`"
    details: Mapping[str, Any] = field(default_factory=dict)


class StepBase(FrozenModel):
    """Fields every step has."""

    if TYPE_CHECKING:  # each kind's model declares it as its Literal (a type checker's view)
        type: str
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

    def slots(self) -> list[Slot]:
        """`(slot, location, member ids)` of each slot of a container step (none for others)."""
        return []

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        """The evaluated configuration its runner receives in StepScheduled.input."""
        raise ValueError(f"{getattr(self, 'type', '?')} steps are run by the engine, not "
                         "scheduled with an input")

    @classmethod
    def awaited(cls, spec: Mapping[str, Any], run_id: str) -> Awaited:
        """What a begun step of this kind (its `task_input`, `spec`) waits for from outside;
        only kinds that begin by awaiting (bend.core.kinds.Begin.AWAIT) tell it."""
        raise ValueError(f"{cls.__name__} steps wait for nothing from outside")


class Approvers(FrozenModel):
    """Who may decide an approval: keys with one of `roles`, or the API keys named in `keys`.

    Neither given: the project's operators (the operator and admin roles).
    """

    roles: tuple[Literal["admin", "editor", "operator", "viewer"], ...] = ()
    keys: tuple[str, ...] = ()  # API key ids

    def allowed_roles(self) -> tuple[str, ...]:
        """The roles that may decide (the operators' when none are named)."""
        return self.roles if self.roles or self.keys else ("operator", "admin")


class AgentTool(FrozenModel):
    """A tool offered to an agent, with options: `requires_approval` gates each of its calls.

    A gated call pauses the agent step before it runs until one of `approvers` approves or
    rejects it (bend.core.gates); a rejection is the tool's result the model reads.
    """

    ref: str = Field(min_length=1)  # component ref `name@version`
    requires_approval: bool = False
    approvers: Approvers = Approvers()


MCP_SERVER_NAME = r"^[A-Za-z][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*$"  # no `__`: it joins server__tool
McpServerName = Annotated[str, StringConstraints(pattern=MCP_SERVER_NAME, max_length=32)]
# HTTP header fields as RFC 9110 allows them: a token, and visible ASCII, spaces and tabs.
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                                              max_length=256)]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\t\x20-\x7e]*$", max_length=8192)]
HttpHeaders = dict[HeaderName, HeaderValue]


class McpServer(FrozenModel):
    """An MCP server an agent takes tools from: at `url` (streamable HTTP), run as `command` with
    `args` (stdio, local development only), or, with neither, the project's registered server
    called `name`. `tools` keeps only the tools it names; header values may name
    `{{ secrets.NAME }}`, filled in by the executor for the server's host."""

    name: McpServerName
    url: str | None = Field(default=None, min_length=1)  # template
    command: str | None = Field(default=None, min_length=1)
    args: tuple[str, ...] = ()
    headers: HttpHeaders = Field(default_factory=dict)
    tools: tuple[str, ...] | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value  # `- github`: registered

    @model_validator(mode="after")
    def _one_place(self) -> McpServer:
        if self.url is not None and self.command is not None:
            raise ValueError("an MCP server has a `url` or a `command`, not both")
        if self.args and self.command is None:
            raise ValueError("`args` go with `command`")
        if self.headers and self.url is None:
            raise ValueError("`headers` go with `url` (a registered server keeps its own)")
        return self

    def task_input(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """What the executor receives: the url rendered, secrets still named, never filled."""
        return {"name": self.name, "url": as_text(render(self.url, ctx)) if self.url else None,
                "command": self.command, "args": list(self.args), "headers": dict(self.headers),
                "tools": list(self.tools) if self.tools is not None else None,
                "timeout_s": self.timeout_s}


def _distinct(servers: tuple[McpServer, ...]) -> tuple[McpServer, ...]:
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ValueError(f"MCP server names repeat ({', '.join(names)}); name each once")
    return servers


McpServers = Annotated[tuple[McpServer, ...], AfterValidator(_distinct)]


class AgentStep(StepBase):
    """A model with tools in a loop (an executor step)."""

    type: Literal["agent"]
    model: str = Field(min_length=1)
    system_prompt: str | None = None  # template
    prompt: str  # template
    tools: tuple[str | AgentTool, ...] = ()  # component refs `name@version`, or with options
    max_iterations: int = Field(default=10, ge=1, le=100)
    temperature: float | None = Field(default=None, ge=0, le=2)
    mcp_servers: McpServers | None = None  # their tools are offered as `server__tool`
    llm: LlmEndpoint | None = None  # default: the workflow's `llm`
    output_schema: JsonSchema = None  # the final answer must be JSON matching it
    # Tried in order when the model (or those before) fail with retryable errors; a bare name
    # is another model on the same endpoint.
    fallbacks: tuple[str | ModelFallback, ...] | None = None
    budget: Budget | None = None  # this step's calls, per attempt

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        for server in self.mcp_servers or ():
            if server.url is not None:
                yield f"mcp_servers.{server.name}.url", "template", server.url
        if self.system_prompt is not None:
            yield "system_prompt", "template", self.system_prompt
        yield "prompt", "template", self.prompt
        if self.llm is not None:
            yield "llm.base_url", "template", self.llm.base_url
        for i, fallback in enumerate(self.fallbacks or ()):
            if isinstance(fallback, ModelFallback) and fallback.llm is not None:
                yield f"fallbacks[{i}].llm.base_url", "template", fallback.llm.base_url

    def gated_tools(self) -> dict[str, dict[str, list[str]]]:
        """Who may decide each gated tool's calls, by the tool's ref."""
        return {t.ref: {"roles": list(t.approvers.allowed_roles()), "keys": list(t.approvers.keys)}
                for t in self.tools if isinstance(t, AgentTool) and t.requires_approval}

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        llm = self.llm or default_llm
        assert llm is not None  # the plan refuses an agent step without an endpoint
        return {
            "model": self.model,
            "prompt": as_text(render(self.prompt, ctx)),
            "system_prompt": (as_text(render(self.system_prompt, ctx))
                              if self.system_prompt is not None else None),
            "tools": [t if isinstance(t, str) else t.ref for t in self.tools],
            **({"gated": gated} if (gated := self.gated_tools()) else {}),
            **({"mcp_servers": [s.task_input(ctx) for s in self.mcp_servers]}
               if self.mcp_servers else {}),
            "max_iterations": self.max_iterations,
            "temperature": self.temperature,
            "llm": llm.rendered(ctx),
            **({"output_schema": self.output_schema} if self.output_schema is not None else {}),
            **({"fallbacks": [
                {"model": f} if isinstance(f, str)
                else {"model": f.model, "llm": (f.llm or llm).rendered(ctx)}
                for f in self.fallbacks]} if self.fallbacks else {}),
            **({"budget": self.budget.model_dump(exclude_none=True)} if self.budget else {}),
        }


class ToolStep(StepBase):
    """One call of a registered component (an executor step)."""

    type: Literal["tool"]
    component: ComponentRef
    inputs: dict[str, Any] = Field(default_factory=dict)  # templates

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        yield "inputs", "template", self.inputs

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        return {"component": self.component, "inputs": render(self.inputs, ctx)}


class HttpStep(StepBase):
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

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        return {"method": self.method, "url": as_text(render(self.url, ctx)),
                "headers": render(self.headers, ctx), "query": render(self.query, ctx),
                "body": render(self.body, ctx)}


class TransformStep(StepBase):
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

    def output(self, ctx: dict[str, Any]) -> Any:
        """Its output in `ctx`: the expression's value, or the mapping's."""
        if self.expression is not None:
            return evaluate(self.expression, ctx)
        return {k: evaluate(v, ctx) for k, v in (self.mapping or {}).items()}


def _case_keys(value: Any) -> Any:
    if isinstance(value, dict):  # YAML reads `1:` and `true:` as numbers and booleans
        return {json.dumps(k) if not isinstance(k, str) else k: v for k, v in value.items()}
    return value


class ConditionStep(StepBase):
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

    def slots(self) -> list[Slot]:
        if self.if_ is not None:
            return [("then", "then", self.then), ("else", "else", self.else_)]
        return [*((f"case:{k}", f"cases.{k}", v) for k, v in self.cases.items()),
                ("default", "default", self.default)]

    def output(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """The arm it takes in `ctx`, and the value that chose it."""
        if self.if_ is not None:
            value = evaluate(self.if_, ctx)
            return {"branch": "then" if truthy(value) else "else", "value": value}
        assert self.switch is not None
        value = evaluate(self.switch, ctx)
        key = value if isinstance(value, str) else json.dumps(value)  # as case keys are written
        if key in self.cases:
            return {"branch": key, "matched": True, "value": value}
        return {"branch": "default", "matched": False, "value": value}

    def taken(self, output: Any) -> str:
        """The slot a finished condition took, from its recorded output."""
        output = output if isinstance(output, dict) else {}
        if self.if_ is not None:
            return "then" if output.get("branch") == "then" else "else"
        return f"case:{output.get('branch')}" if output.get("matched") else "default"

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        if self.if_ is not None:
            yield "if", "expression", self.if_
        if self.switch is not None:
            yield "switch", "expression", self.switch


class LoopStep(StepBase):
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

    def slots(self) -> list[Slot]:
        return [("body", "body", self.body)]


class ParallelStep(StepBase):
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

    def slots(self) -> list[Slot]:
        return [(f"branch:{b}", f"branches[{b}]", ids) for b, ids in enumerate(self.branches)]


class DelayStep(StepBase):
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


class SubworkflowStep(StepBase):
    """Starts a child run of `workflow` (inline `definition`, or resolved by id and version)."""

    type: Literal["subworkflow"]
    workflow: str = Field(min_length=1)
    version: int | None = Field(default=None, ge=1)
    definition: WorkflowDefinition | None = None
    input: Any = None  # template

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        yield "input", "template", self.input

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        return {"workflow_id": self.workflow, "version": self.version,
                "input": render(self.input, ctx)}


class ApprovalStep(StepBase):
    """Waits for a person to approve or reject; approved, its output is the approver's answer.

    A rejection fails the step (error type ApprovalRejected, not retried). Past `timeout`, the
    step takes `on_timeout`.
    """

    type: Literal["approval"]
    message: str = ""  # template: what the approver is asked
    approvers: Approvers = Approvers()
    answer_schema: JsonSchema = None  # the fields the approver fills in
    on_timeout: Literal["approve", "reject"] = "reject"

    def fields_to_check(self) -> Iterator[tuple[str, str, Any]]:
        yield from super().fields_to_check()
        yield "message", "template", self.message

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        return {"message": as_text(render(self.message, ctx)),
                "approvers": {"roles": list(self.approvers.allowed_roles()),
                              "keys": list(self.approvers.keys)},
                "answer_schema": self.answer_schema, "on_timeout": self.on_timeout}

    @classmethod
    def awaited(cls, spec: Mapping[str, Any], run_id: str) -> Awaited:
        approvers = spec.get("approvers") or {}
        who = ", ".join([*(approvers.get("roles") or ()),
                         *(f"key {k}" for k in approvers.get("keys") or ())])
        return Awaited("approval", "an approval", f"an approval by {who or 'its approvers'}; "
                       "see `bend approvals list`", {"approvers": approvers})


class WaitStep(StepBase):
    """Waits for the signal named `signal`; its output is the signal's payload.

    A signal that came before the step began waits for it in the run. Past `timeout`, the step
    times out (and the run fails).
    """

    type: Literal["wait"]
    signal: SignalName
    payload_schema: JsonSchema = None  # what the signal's payload must match

    def task_input(self, ctx: dict[str, Any], default_llm: LlmEndpoint | None) -> Any:
        return {"signal": self.signal, "payload_schema": self.payload_schema}

    @classmethod
    def awaited(cls, spec: Mapping[str, Any], run_id: str) -> Awaited:
        signal = spec.get("signal")
        return Awaited("signal", f"the signal {signal!r}", f"the signal {signal!r}; send it "
                       f"with `bend runs signal {run_id} {signal}`", {"signal": signal})
