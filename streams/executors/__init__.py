"""Executors for agent, tool and http steps: `await execute(task, ctx) -> StepOutcome`."""

from streams.executors.circuits import CircuitBreakers
from streams.executors.context import ExecutionContext
from streams.executors.dispatch import EXECUTORS, execute
from streams.executors.errors import PermanentStepError, RetryableStepError, StepError
from streams.executors.outcome import StepOutcome
from streams.executors.secrets import DictSecrets, SecretResolver

__all__ = [
    "EXECUTORS", "CircuitBreakers", "DictSecrets", "ExecutionContext", "PermanentStepError",
    "RetryableStepError", "SecretResolver", "StepError", "StepOutcome", "execute",
]
