"""The agent executor: a chat-completions loop that runs the model's tool calls via components.

The model is the step's, else its fallbacks in turn (streams/executors/fallbacks.py), at an
OpenAI-compatible or Anthropic endpoint; with an `output_schema` the final answer must be JSON
matching it, with one repair turn (streams/executors/structured.py); budgets stop the loop
before or after a call that goes past them (streams/executors/metering.py).

A call of a gated tool (the task's `gated`) is not run: the attempt pauses, reporting
AwaitToolApproval with a checkpoint of the loop (bend.core.gates). Once a person decides, the
attempt comes back with `resume` (the checkpoint and the decision) and goes on from there: the
approved call runs, a rejected one's reason is the tool's result the model reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bend.components import Component, ComponentError
from bend.core.commands import AwaitToolApproval, RecordLlmCall
from bend.core.events import StepScheduled
from bend.core.gates import rejection_text
from streams.executors.context import ExecutionContext
from streams.executors.errors import (
    InvalidStepInput, MaxIterationsExceeded, OutputSchemaMismatch, StepError, ToolFailed,
)
from streams.executors.fallbacks import Candidate, answer
from streams.executors.inputs import parse_input
from streams.executors.mcp import McpTools
from streams.executors.metering import Meter
from streams.executors.outcome import Recorder, StepOutcome, command_envelope
from streams.executors.structured import ask_for, read_answer, repair_turn
from streams.executors.tool import component_context, invoke_component

__all__ = ["AgentInput", "LlmConfig", "Resume", "execute", "openai_tools", "parse"]

log = structlog.get_logger(__name__)


class LlmConfig(BaseModel):
    """Where the model is: a base URL, the NAME of the key's secret, the API it speaks."""

    model_config = ConfigDict(extra="ignore")

    base_url: str = Field(pattern=r"^https?://")
    api_key_secret: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    provider: Literal["openai", "anthropic"] | None = None  # None: by settings, else openai
    structured_output: Literal["response_format", "instructions"] | None = None


class FallbackConfig(BaseModel):
    """A model tried when those before it fail with a retryable error (its endpoint rendered)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    llm: LlmConfig | None = None  # None: the step's endpoint


class Resume(BaseModel):
    """Where a paused attempt goes on from, and the decision on the call it paused on."""

    model_config = ConfigDict(extra="ignore")

    checkpoint: dict[str, Any]
    tool_call_id: str
    approved: bool
    decided_by: str = ""
    comment: str = ""


def _fallbacks(value: Any) -> Any:
    """None as none, and a bare model name as that model on the step's endpoint."""
    if value is None:
        return []
    if isinstance(value, list):
        return [{"model": f} if isinstance(f, str) else f for f in value]
    return value


class AgentInput(BaseModel):
    """An agent node's evaluated configuration (bend.core.definitions.AgentStep's fields)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    prompt: str
    system_prompt: str | None = None
    tools: list[str] = Field(default_factory=list)
    max_iterations: int = Field(default=10, ge=1, le=100)
    temperature: float | None = Field(default=None, ge=0, le=2)
    llm: LlmConfig | None = None  # the orchestrator fills in the workflow's `llm` if unset
    gated: dict[str, Any] = Field(default_factory=dict)  # tool ref -> who may approve a call
    resume: Resume | None = None  # a paused attempt's checkpoint and decision
    mcp_servers: list[dict[str, Any]] | None = None  # read by streams/executors/mcp.py
    output_schema: dict[str, Any] | None = None  # the final answer: JSON matching it
    fallbacks: Annotated[list[FallbackConfig], BeforeValidator(_fallbacks)] = Field(
        default_factory=list)
    budget: dict[str, Any] | None = None  # this step's {max_tokens, max_cost_usd}
    run_budget: dict[str, Any] | None = None  # the run's, with what it had used (the core's)


def parse(value: Any) -> AgentInput:
    """The task's input as an `AgentInput`; it must name an LLM endpoint."""
    spec = parse_input(AgentInput, "agent", value)
    if spec.llm is None:
        raise InvalidStepInput("agent", "no LLM endpoint; set `llm: {base_url, api_key_secret}` "
                                        "on the step or on the workflow")
    return spec


def openai_tools(components: list[Component]) -> list[dict[str, Any]]:
    """Components described as OpenAI function tools (name, description, JSON Schema)."""
    return [
        {"type": "function", "function": {
            "name": comp.name, "description": comp.description,
            "parameters": dict(comp.input_schema),
        }}
        for comp in components
    ]


def _tools(spec: AgentInput, ctx: ExecutionContext) -> dict[str, Component]:
    by_name: dict[str, Component] = {}
    for ref in spec.tools:
        try:
            comp = ctx.registry.get(ref)
        except ComponentError as exc:
            raise InvalidStepInput("agent", f"tools: {exc.message}") from exc
        if comp.name in by_name:
            raise InvalidStepInput("agent", f"tools: {comp.name} is listed twice; the model "
                                            "names tools without versions, keep one")
        by_name[comp.name] = comp
    return by_name


async def _run_tool(call: dict[str, Any], tools: dict[str, Component], task: StepScheduled,
                    recorder: Recorder, rejected: str | None = None) -> str:
    """Run one tool call; errors a retry cannot fix go back to the model as the result.

    `rejected` (a gated call a person rejected) is recorded and returned as the error instead.
    """
    function = call.get("function") or {}
    name, raw = str(function.get("name", "")), function.get("arguments") or "{}"
    call_id = str(call.get("id", ""))
    started = time.perf_counter()
    arguments: Any = raw
    result: Any = None
    error: str | None = rejected
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(arguments, dict):
            raise ValueError("not an object")
    except ValueError:
        error = f"the arguments of {name} are not a JSON object: {raw!r}"
    comp = tools.get(name)
    if error is None and comp is None:
        error = f"there is no tool named {name!r}; the tools are: {', '.join(tools)}"
    if error is None and comp is not None:
        context = component_context(task, f"tool:{recorder.next_index}")
        try:
            result = await invoke_component(comp, arguments, context)
        except ToolFailed as exc:
            if exc.retryable:
                recorder.tool_call(tool_call_id=call_id, tool_name=comp.ref, arguments=arguments,
                                   result=None, error=exc.message,
                                   latency_ms=int((time.perf_counter() - started) * 1000))
                raise
            error = exc.message
    recorder.tool_call(tool_call_id=call_id, tool_name=comp.ref if comp else name,
                       arguments=arguments, result=result, error=error,
                       latency_ms=int((time.perf_counter() - started) * 1000))
    return json.dumps({"error": error} if error is not None else result)


class _Paused(Exception):
    """The model called a gated tool that no one has decided on yet."""

    def __init__(self, command: AwaitToolApproval) -> None:
        super().__init__(command.tool_call_id)
        self.command = command


@dataclass(slots=True)
class _Loop:
    """Where the loop stands: what a checkpoint keeps and a resumed attempt starts from."""

    messages: list[dict[str, Any]]
    pending: list[dict[str, Any]] = field(default_factory=list)  # calls of this turn to run
    iteration: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0
    cost_usd: float = 0.0
    repaired: bool = False  # the one repair turn of a structured answer was used

    def checkpoint(self, recorder: Recorder) -> dict[str, Any]:
        """The loop as JSON, with the call index the resumed attempt records from."""
        return {"messages": self.messages, "pending": self.pending,
                "iteration": self.iteration, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "tool_calls": self.tool_calls,
                "cost_usd": self.cost_usd, "repaired": self.repaired,
                "next_call_index": recorder.next_index}

    @classmethod
    def restore(cls, checkpoint: dict[str, Any]) -> _Loop:
        """The loop a checkpoint kept."""
        return cls(list(checkpoint.get("messages") or []),
                   list(checkpoint.get("pending") or []),
                   int(checkpoint.get("iteration") or 0),
                   int(checkpoint.get("prompt_tokens") or 0),
                   int(checkpoint.get("completion_tokens") or 0),
                   int(checkpoint.get("tool_calls") or 0),
                   float(checkpoint.get("cost_usd") or 0.0),
                   bool(checkpoint.get("repaired")))


def _gate(call: dict[str, Any], spec: AgentInput, listed: dict[str, str], loop: _Loop,
          task: StepScheduled, recorder: Recorder) -> str | None:
    """None to run the call; a rejection's text to return instead; _Paused if undecided."""
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    ref = listed.get(name)
    if ref is None or ref not in spec.gated:
        return None
    call_id = str(call.get("id", ""))
    decided = spec.resume
    if decided is not None and decided.tool_call_id == call_id:
        return None if decided.approved else rejection_text(decided.decided_by, decided.comment)
    raw = function.get("arguments") or "{}"
    try:
        arguments: Any = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        arguments = raw
    raise _Paused(AwaitToolApproval(
        **command_envelope(task, f"gate:{call_id}", recorder.clock()), step_id=task.step_id,
        attempt=task.attempt, tool_call_id=call_id, tool_name=ref, arguments=arguments,
        checkpoint=loop.checkpoint(recorder)))


def _start(spec: AgentInput) -> _Loop:
    if spec.resume is not None:
        return _Loop.restore(spec.resume.checkpoint)
    messages: list[dict[str, Any]] = []
    if spec.system_prompt:
        messages.append({"role": "system", "content": spec.system_prompt})
    messages.append({"role": "user", "content": spec.prompt})
    return _Loop(messages)


def _candidates(spec: AgentInput) -> list[Candidate]:
    """The step's model at its endpoint, then each fallback at its own (or the step's)."""
    assert spec.llm is not None  # parse() refuses a step without one
    tried = [(spec.model, spec.llm), *((f.model, f.llm or spec.llm) for f in spec.fallbacks)]
    return [Candidate(model, llm.model_dump(exclude_none=True)) for model, llm in tried]


def _adapt(spec: AgentInput) -> Any:
    """How a request asks a candidate's provider for the step's output_schema (None: as is)."""
    schema = spec.output_schema
    if schema is None:
        return None
    return lambda request, endpoint: ask_for(request, schema, endpoint.native_schema)


def _final(spec: AgentInput, loop: _Loop, content: str | None) -> tuple[bool, Any]:
    """(done, answer): the answer, or not done when a structured answer gets its repair turn."""
    if spec.output_schema is None:
        return True, content or ""
    value, problem = read_answer(content, spec.output_schema)
    if problem is None:
        return True, value
    if loop.repaired:
        raise OutputSchemaMismatch(problem)
    loop.repaired = True
    log.info("agent_output_repair", problem=problem)
    loop.messages.append(repair_turn(problem))
    return False, None


async def _loop(task: StepScheduled, ctx: ExecutionContext, recorder: Recorder,
                mcp: McpTools) -> Any:
    spec = parse(task.input)
    tools = _tools(spec, ctx)
    listed = {comp.name: ref for ref, comp in zip(spec.tools, tools.values(), strict=True)}
    candidates = _candidates(spec)
    loop = _start(spec)
    meter = Meter.of(spec.budget, spec.run_budget)
    meter.tokens, meter.cost_usd = loop.prompt_tokens + loop.completion_tokens, loop.cost_usd
    described = openai_tools(list(tools.values())) + mcp.described(tools)
    while True:
        while loop.pending:  # the calls of the last turn not run yet (a resumed attempt's)
            call = loop.pending[0]
            rejected = _gate(call, spec, listed, loop, task, recorder)
            content = await (mcp.run(call, recorder) if mcp.offers(call) else
                             _run_tool(call, tools, task, recorder, rejected))
            loop.pending.pop(0)
            loop.tool_calls += 1
            loop.messages.append({"role": "tool", "tool_call_id": call.get("id", ""),
                                  "content": content})
        if loop.iteration >= spec.max_iterations:
            raise MaxIterationsExceeded(spec.max_iterations)
        meter.before_call()
        loop.iteration += 1
        request: dict[str, Any] = {"model": spec.model, "messages": list(loop.messages)}
        if described:
            request["tools"] = described
        if spec.temperature is not None:
            request["temperature"] = spec.temperature
        response, endpoint, position = await answer(ctx, task.project, candidates, request,
                                                    recorder, _adapt(spec))
        record = recorder.records[-1]
        assert isinstance(record, RecordLlmCall)  # answer() recorded the call
        loop.prompt_tokens += record.prompt_tokens
        loop.completion_tokens += record.completion_tokens
        loop.cost_usd += record.cost_usd
        meter.after_call(record.prompt_tokens + record.completion_tokens, record.cost_usd)
        message = response["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        assistant: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if calls:
            assistant["tool_calls"] = calls
        loop.messages.append(assistant)
        if not calls:
            done, final = _final(spec, loop, message.get("content"))
            if not done:
                continue
            return {
                "answer": final, "model": candidates[position].model,
                "provider": endpoint.provider, "fallback": position,
                "iterations": loop.iteration, "tool_calls": loop.tool_calls,
                "usage": {"prompt_tokens": loop.prompt_tokens,
                          "completion_tokens": loop.completion_tokens,
                          "cost_usd": round(loop.cost_usd, 8)},
            }
        loop.pending = list(calls)


def _first_index(value: Any) -> int:
    """The call index a resumed attempt records from (0 for a fresh one)."""
    resume = value.get("resume") if isinstance(value, dict) else None
    checkpoint = resume.get("checkpoint") if isinstance(resume, dict) else None
    return int(checkpoint.get("next_call_index") or 0) if isinstance(checkpoint, dict) else 0


async def execute(task: StepScheduled, ctx: ExecutionContext) -> StepOutcome:
    """Run the agent loop; the outcome carries every model and tool call, in order."""
    recorder = Recorder(task, ctx.clock, first_index=_first_index(task.input))
    try:
        async with McpTools.open(task, ctx) as mcp:
            output = await _loop(task, ctx, recorder, mcp)
    except _Paused as paused:
        log.info("agent_paused", tool_call_id=paused.command.tool_call_id,
                 tool_name=paused.command.tool_name, calls=len(recorder.records))
        return StepOutcome.paused(paused.command, tuple(recorder.records))
    except StepError as exc:
        log.info("agent_failed", error_type=exc.error_type, calls=len(recorder.records))
        return StepOutcome.failure(exc, tuple(recorder.records))
    return StepOutcome.success(output, tuple(recorder.records))
