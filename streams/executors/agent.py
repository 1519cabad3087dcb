"""The agent executor: a chat-completions loop that runs the model's tool calls via components."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from bend.components import Component, ComponentError
from bend.core.events import StepScheduled
from streams.executors.context import ExecutionContext
from streams.executors.errors import (
    InvalidStepInput, MaxIterationsExceeded, StepError, ToolFailed,
)
from streams.executors.inputs import parse_input
from streams.executors.llm import LlmEndpoint, chat
from streams.executors.outcome import Recorder, StepOutcome
from streams.executors.tool import component_context, invoke_component

__all__ = ["AgentInput", "LlmConfig", "execute", "openai_tools", "parse"]

log = structlog.get_logger(__name__)


class LlmConfig(BaseModel):
    """Where the model is: an OpenAI-compatible base URL and the NAME of the key's secret."""

    model_config = ConfigDict(extra="ignore")

    base_url: str = Field(pattern=r"^https?://")
    api_key_secret: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)


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
                    recorder: Recorder) -> str:
    """Run one tool call; errors a retry cannot fix go back to the model as the result."""
    function = call.get("function") or {}
    name, raw = str(function.get("name", "")), function.get("arguments") or "{}"
    call_id = str(call.get("id", ""))
    started = time.perf_counter()
    arguments: Any = raw
    result: Any = None
    error: str | None = None
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
        context = component_context(task, f"tool:{len(recorder.records)}")
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


async def _loop(task: StepScheduled, ctx: ExecutionContext, recorder: Recorder) -> Any:
    spec = parse(task.input)
    assert spec.llm is not None  # parse() refuses a step without one
    tools = _tools(spec, ctx)
    secret = spec.llm.api_key_secret
    api_key = (await ctx.secrets.secret(secret, task.project)).for_url(spec.llm.base_url) \
        if secret else None
    endpoint = LlmEndpoint(spec.llm.base_url, api_key, spec.llm.timeout_s or ctx.llm_timeout_s)
    messages: list[dict[str, Any]] = []
    if spec.system_prompt:
        messages.append({"role": "system", "content": spec.system_prompt})
    messages.append({"role": "user", "content": spec.prompt})
    described = openai_tools(list(tools.values()))
    prompt_tokens = completion_tokens = tool_calls_made = 0
    for iteration in range(1, spec.max_iterations + 1):
        request: dict[str, Any] = {"model": spec.model, "messages": list(messages)}
        if described:
            request["tools"] = described
        if spec.temperature is not None:
            request["temperature"] = spec.temperature
        response = await chat(ctx, endpoint, request, recorder)
        usage = response.get("usage") or {}
        prompt_tokens += int(usage.get("prompt_tokens") or 0)
        completion_tokens += int(usage.get("completion_tokens") or 0)
        message = response["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        assistant: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        if not calls:
            return {
                "answer": message.get("content") or "", "model": spec.model,
                "iterations": iteration, "tool_calls": tool_calls_made,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            }
        for call in calls:
            content = await _run_tool(call, tools, task, recorder)
            tool_calls_made += 1
            messages.append({"role": "tool", "tool_call_id": call.get("id", ""),
                             "content": content})
    raise MaxIterationsExceeded(spec.max_iterations)


async def execute(task: StepScheduled, ctx: ExecutionContext) -> StepOutcome:
    """Run the agent loop; the outcome carries every model and tool call, in order."""
    recorder = Recorder(task, ctx.clock)
    try:
        output = await _loop(task, ctx, recorder)
    except StepError as exc:
        log.info("agent_failed", error_type=exc.error_type, calls=len(recorder.records))
        return StepOutcome.failure(exc, tuple(recorder.records))
    return StepOutcome.success(output, tuple(recorder.records))
