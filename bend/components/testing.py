"""Components for benchmarks and failure tests: a no-op, and one that fails on request."""

from __future__ import annotations

import asyncio
from typing import Any

from bend.components.component import ComponentContext, component
from bend.core.errors import BendError

__all__ = ["FlakyFailure", "flaky", "noop", "sleep"]


class FlakyFailure(BendError):
    """The `flaky` component failed on purpose (retryable)."""


@component(
    "noop", "1",
    description="Return the inputs unchanged: a step with no work, for measuring the engine.",
    tags=["testing", "benchmark"],
    input_schema={"type": "object"},
    output_schema={"type": "object"},
)
def noop(**inputs: Any) -> dict[str, Any]:
    """The inputs, as they came."""
    return inputs


@component(
    "flaky", "1",
    description="Fail while the step's attempt is at most `fail_attempts`, then succeed.",
    tags=["testing"],
    input_schema={"type": "object", "properties": {"fail_attempts": {"type": "integer"}}},
    output_schema={"type": "object"},
)
def flaky(fail_attempts: int = 1, context: ComponentContext | None = None) -> dict[str, Any]:
    """Fails attempts 1..fail_attempts of its step, then returns the attempt that passed."""
    attempt = context.attempt if context else 1
    if attempt <= fail_attempts:
        raise FlakyFailure(f"attempt {attempt} of {fail_attempts} planned failures")
    return {"attempt": attempt}


@component(
    "sleep", "1",
    description="Wait `seconds`, then return them: a step that is still running when a test stops "
                "its worker.",
    tags=["testing"],
    input_schema={"type": "object", "required": ["seconds"],
                  "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 300}}},
    output_schema={"type": "object"},
)
async def sleep(seconds: float) -> dict[str, Any]:
    """Sleeps without blocking the worker's loop."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}
