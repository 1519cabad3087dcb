"""Why a step's attempt failed: retryable errors may pass on a later attempt, permanent ones
never."""

from __future__ import annotations

from datetime import datetime

from bend.core.errors import BendError

__all__ = [
    "BudgetExceeded", "CircuitOpen", "InvalidStepInput", "LlmBadResponse", "LlmRejected",
    "LlmUnavailable", "MaxIterationsExceeded", "OutputSchemaMismatch", "PermanentStepError",
    "RetryableStepError", "SecretNotFound", "StepError", "StepTimeout", "TargetFailed",
    "TargetRejected", "ToolFailed", "UnknownNodeType",
]


class StepError(BendError):
    """Root of step failures; `error_type` is what `FailStep.error_type` carries."""

    retryable: bool = True

    @property
    def error_type(self) -> str:
        """The error's class name, as recorded on the failed step."""
        return type(self).__name__


class RetryableStepError(StepError):
    """A failure another attempt may not meet (a timeout, a 5xx, a dropped connection)."""

    retryable = True


class PermanentStepError(StepError):
    """A failure no retry can fix (bad input, a 4xx, a missing secret); the run must change."""

    retryable = False


class UnknownNodeType(PermanentStepError):
    """No executor runs this node type."""

    def __init__(self, node_type: str, known: list[str]) -> None:
        super().__init__(
            f"no executor for node type {node_type!r} (executors: {', '.join(known)}); "
            "the orchestrator should run this node itself, or the definition is wrong"
        )
        self.node_type = node_type


class InvalidStepInput(PermanentStepError):
    """The step's evaluated input does not fit its node type."""

    def __init__(self, node_type: str, detail: str) -> None:
        super().__init__(f"the {node_type} step's input is invalid: {detail}; fix the node's "
                         "configuration (or the expressions feeding it) in the workflow")
        self.node_type = node_type


class SecretNotFound(PermanentStepError):
    """A step names a secret nobody defined."""

    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name!r} is not defined for this run's project; set it with "
                         f"PUT /api/secrets/{name} (with its allowed_hosts) or, for the "
                         f"installation's own project, BEND_SECRET_{name.upper()} on the "
                         "executors; then retry the run")
        self.name = name


class CircuitOpen(RetryableStepError):
    """Calls to a target are held back after its consecutive failures."""

    def __init__(self, target: str, open_until: datetime | None) -> None:
        when = f"until {open_until.isoformat()}" if open_until else "while a probe call runs"
        super().__init__(f"circuit for {target} is open {when} after consecutive failures; "
                         "the step is retried later, check the target's health")
        self.target = target
        self.open_until = open_until


class StepTimeout(RetryableStepError):
    """The attempt (or one of its calls) ran past its time limit."""

    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(f"{what} took longer than {timeout_s:g} s; it is retried, raise the "
                         "timeout if the target is just slow")
        self.timeout_s = timeout_s


class TargetFailed(RetryableStepError):
    """An HTTP target answered 5xx/429/408 or could not be reached."""


class TargetRejected(PermanentStepError):
    """An HTTP target refused the request with a 4xx; the request must change."""


class LlmUnavailable(RetryableStepError):
    """The model endpoint failed (5xx, 429, timeout, connection); another attempt may pass."""


class LlmRejected(PermanentStepError):
    """The model endpoint refused the request (4xx: bad key, unknown model, bad request)."""


class LlmBadResponse(PermanentStepError):
    """The model endpoint answered something that is not a chat completion."""


class MaxIterationsExceeded(PermanentStepError):
    """An agent used all its iterations without a final answer."""

    def __init__(self, max_iterations: int) -> None:
        super().__init__(
            f"the agent made {max_iterations} model calls (max_iterations) without a final "
            "answer; raise max_iterations or make the prompt ask for an answer sooner"
        )
        self.max_iterations = max_iterations


class OutputSchemaMismatch(PermanentStepError):
    """An agent's final answer did not match its output_schema, even after one repair turn."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"the agent's answer does not match the step's output_schema after one repair "
            f"turn: {problem}; make the prompt describe the fields, loosen the schema or use a "
            "model that supports structured output"
        )
        self.problem = problem


class BudgetExceeded(PermanentStepError):
    """An agent step's or a run's LLM budget is spent (tokens or cost)."""

    def __init__(self, spent: str, what: str) -> None:
        super().__init__(f"{spent}; {what}")
        self.spent = spent


class ToolFailed(StepError):
    """A component called by a tool step failed; retryable as the component said."""

    def __init__(self, message: str, *, retryable: bool, error_type: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self._error_type = error_type

    @property
    def error_type(self) -> str:
        """The component's own error class name (e.g. `PageNotFound`)."""
        return self._error_type
