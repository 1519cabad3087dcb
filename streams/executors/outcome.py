"""What an attempt produced: an output or a typed failure, plus the calls recorded on the way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bend.core.commands import Command, RecordLlmCall, RecordToolCall
from bend.core.events import StepScheduled
from streams.executors.errors import StepError

__all__ = ["Recorder", "StepOutcome", "command_envelope"]


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """`succeeded` with `output`, or failed with `error_type`, `message`, `retryable`."""

    succeeded: bool
    output: Any = None
    error_type: str | None = None
    message: str | None = None
    retryable: bool = False
    records: tuple[Command, ...] = ()  # RecordLlmCall / RecordToolCall, in call order
    pause: Command | None = None  # set: the attempt paused (AwaitToolApproval), neither outcome

    @classmethod
    def success(cls, output: Any, records: tuple[Command, ...] = ()) -> StepOutcome:
        """The attempt produced `output`."""
        return cls(succeeded=True, output=output, records=records)

    @classmethod
    def paused(cls, pause: Command, records: tuple[Command, ...] = ()) -> StepOutcome:
        """The attempt paused on `pause` (a gated tool call); it resumes once decided."""
        return cls(succeeded=False, records=records, pause=pause)

    @classmethod
    def failure(cls, error: StepError, records: tuple[Command, ...] = ()) -> StepOutcome:
        """The attempt failed with `error`."""
        return cls(succeeded=False, error_type=error.error_type, message=error.message,
                   retryable=error.retryable, records=records)


def command_envelope(task: StepScheduled, what: str, now: datetime) -> dict[str, Any]:
    """Envelope fields of a command reporting on `task`; ids are stable if the task reruns."""
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task.event_id}:{what}")),
        "run_id": task.run_id, "workflow_id": task.workflow_id,
        "workflow_version": task.workflow_version, "occurred_at": now,
        "causation_id": task.event_id, "correlation_id": task.correlation_id,
        "tenant": task.tenant, "project": task.project,
    }


@dataclass(slots=True)
class Recorder:
    """Collects an attempt's LLM and tool calls as commands; `call_index` counts both kinds."""

    task: StepScheduled
    clock: Callable[[], datetime]
    records: list[Command] = field(default_factory=list)
    first_index: int = 0  # a resumed attempt goes on from its earlier calls' count

    @property
    def next_index(self) -> int:
        """The call index of the next call recorded."""
        return self.first_index + len(self.records)

    def _envelope(self) -> dict[str, Any]:
        return command_envelope(self.task, f"call:{self.next_index}", self.clock())

    def llm_call(self, *, model: str, request: Any, response: Any, prompt_tokens: int,
                 completion_tokens: int, latency_ms: int, provider: str = "",
                 endpoint: str = "", fallback: int = 0, cost_usd: float = 0.0) -> RecordLlmCall:
        """Record one model call (`fallback` > 0: the step's n-th fallback answered)."""
        record = RecordLlmCall(
            **self._envelope(), step_id=self.task.step_id, attempt=self.task.attempt,
            call_index=self.next_index, model=model, request=request, response=response,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            latency_ms=latency_ms, provider=provider, endpoint=endpoint, fallback=fallback,
            cost_usd=cost_usd,
        )
        self.records.append(record)
        return record

    def tool_call(self, *, tool_call_id: str, tool_name: str, arguments: Any, result: Any,
                  error: str | None, latency_ms: int) -> RecordToolCall:
        """Record one tool call (`error` set when it failed, `result` then None)."""
        record = RecordToolCall(
            **self._envelope(), step_id=self.task.step_id, attempt=self.task.attempt,
            call_index=self.next_index, tool_call_id=tool_call_id, tool_name=tool_name,
            arguments=arguments, result=result, error=error, latency_ms=latency_ms,
        )
        self.records.append(record)
        return record
