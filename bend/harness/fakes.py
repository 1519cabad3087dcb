"""What stands in for the executors in a harness run: tools, HTTP and agents as callables."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bend.core.errors import BendError

__all__ = ["HANG", "Fakes", "NoFake", "ScriptedModel", "StepFailure", "tools_by_ref"]


class StepFailure(BendError):
    """Raise it from a fake to fail the attempt as an executor would: `retryable` (retried as
    the step's policy says) or not, with the `error_type` the run records."""

    def __init__(self, message: str, *, retryable: bool = True,
                 error_type: str = "ToolFailed") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_type = error_type


class NoFake(BendError):
    """A step the harness has no fake for."""

    def __init__(self, node_type: str, name: str) -> None:
        super().__init__(f"no fake for {node_type} {name!r}: pass it in "
                         f"{ {'tool': 'tools', 'http': 'http', 'agent': 'agents'}[node_type]}=")
        self.node_type, self.name = node_type, name


class _Hang:
    """Returned by a fake: the attempt never reports, so the step's timeout (if any) ends it."""

    def __repr__(self) -> str:
        return "HANG"


HANG = _Hang()

Tool = Callable[[dict[str, Any]], Any]
Http = Callable[[dict[str, Any]], Any]
Agent = Callable[[dict[str, Any]], Any]


class ScriptedModel:
    """An agent's answers in order, one per attempt; an exception in the script is raised."""

    def __init__(self, answers: Iterable[Any]) -> None:
        self._answers = list(answers)
        self.seen: list[dict[str, Any]] = []

    def __call__(self, task_input: dict[str, Any]) -> Any:
        self.seen.append(task_input)
        if not self._answers:
            raise StepFailure("the scripted model has no answer left", retryable=False,
                              error_type="ScriptExhausted")
        answer = self._answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _is_component(fn: Any) -> bool:
    """A bend.components Component (by its shape: the harness imports no components)."""
    return all(hasattr(fn, a) for a in ("ref", "fn", "validate_input", "validate_output"))


def _invoke_component(comp: Any, inputs: dict[str, Any]) -> Any:
    """Call a real component as the tool executor does: inputs and output checked against its
    schemas; an async one runs on a loop of its own."""
    comp.validate_input(inputs)
    kwargs = dict(inputs)
    if "context" in inspect.signature(comp.fn).parameters:
        kwargs["context"] = None
    output = comp.fn(**kwargs)
    if inspect.isawaitable(output):
        with ThreadPoolExecutor(1) as pool:
            output = pool.submit(asyncio.run, _awaited(output)).result()
    comp.validate_output(output)
    return output


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def tools_by_ref(tools: Mapping[str, Tool] | Iterable[Any] | None) -> dict[str, Tool]:
    """Fakes by component ref or name; components (from bend.sdk's @tool) may come as a list."""
    if tools is None:
        return {}
    if isinstance(tools, Mapping):
        return dict(tools)
    found: dict[str, Tool] = {}
    comp: Any
    for comp in tools:
        if not _is_component(comp):
            raise TypeError(f"{comp!r} is not a component; pass tools as {{ref: callable}}")
        found[comp.ref] = comp
    return found


@dataclass(frozen=True, slots=True)
class Fakes:
    """Tools by component (`name@version` or `name`), one HTTP callable, agents by step id."""

    tools: Mapping[str, Tool]
    http: Http | None
    agents: Mapping[str, Agent]

    def call(self, node_type: str, step_id: str, task_input: Any) -> Any:
        """What the fake for this step returns (or raises)."""
        spec = task_input if isinstance(task_input, dict) else {}
        if node_type == "tool":
            ref = str(spec.get("component", ""))
            fn = self.tools.get(ref) or self.tools.get(ref.split("@", 1)[0])
            if fn is None:
                raise NoFake("tool", ref)
            inputs = dict(spec.get("inputs") or {})
            if _is_component(fn):
                return _invoke_component(fn, inputs)
            return fn(inputs)
        if node_type == "http":
            if self.http is None:
                raise NoFake("http", str(spec.get("url", "")))
            return self.http(spec)
        base = step_id.split("[", 1)[0]  # an instance inside a loop or map: `step[2]`
        agent = self.agents.get(step_id) or self.agents.get(base)
        if agent is None:
            raise NoFake(node_type, step_id)
        return agent(spec)
