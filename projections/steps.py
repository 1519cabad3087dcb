"""Projects step events into `steps` (each step's latest attempt) and `step_attempts`."""

from __future__ import annotations

from typing import Any

from bend.core.events import (
    Event, StepCancelled, StepFailed, StepRetryScheduled, StepScheduled, StepSkipped,
    StepStarted, StepSucceeded, StepTimedOut,
)
from projections.writes import Write

__all__ = ["writes"]

# A new attempt clears the previous attempt's outcome from the step's row; the attempt rows
# keep every outcome.
_SCHEDULED = """
WITH attempt AS (
    INSERT INTO step_attempts (run_id, step_id, attempt, status, input, idempotency_key,
                               scheduled_at)
    VALUES ($1, $2, $4, 'scheduled', $5, $7, $8)
    ON CONFLICT (run_id, step_id, attempt) DO NOTHING
)
INSERT INTO steps (run_id, step_id, node_type, status, attempts, input, timeout_ms, scheduled_at)
VALUES ($1, $2, $3, 'scheduled', $4, $5, $6, $8)
ON CONFLICT (run_id, step_id) DO UPDATE SET
    node_type = EXCLUDED.node_type, status = 'scheduled',
    attempts = greatest(steps.attempts, EXCLUDED.attempts), input = EXCLUDED.input,
    timeout_ms = EXCLUDED.timeout_ms, output = NULL, error_type = NULL, error_message = NULL,
    reason = NULL, next_retry_at = NULL, finished_at = NULL, duration_ms = NULL
"""

_STARTED = """
WITH attempt AS (
    UPDATE step_attempts SET status = 'running', started_at = $4, worker_id = $5
    WHERE run_id = $1 AND step_id = $2 AND attempt = $3
)
UPDATE steps SET status = 'running', started_at = coalesce(started_at, $4), worker_id = $5
WHERE run_id = $1 AND step_id = $2 AND attempts <= $3
"""

_SUCCEEDED = """
WITH attempt AS (
    UPDATE step_attempts SET status = 'succeeded', output = $5, finished_at = $4,
                             duration_ms = $6
    WHERE run_id = $1 AND step_id = $2 AND attempt = $3
)
UPDATE steps SET status = 'succeeded', output = $5, finished_at = $4, duration_ms = $6
WHERE run_id = $1 AND step_id = $2 AND attempts <= $3
"""

_FAILED = """
WITH attempt AS (
    UPDATE step_attempts SET status = 'failed', error_type = $5, error_message = $6,
                             retryable = $7, finished_at = $4
    WHERE run_id = $1 AND step_id = $2 AND attempt = $3
)
UPDATE steps SET status = 'failed', error_type = $5, error_message = $6, finished_at = $4
WHERE run_id = $1 AND step_id = $2 AND attempts <= $3
"""

_TIMED_OUT = """
WITH attempt AS (
    UPDATE step_attempts SET status = 'timed_out', finished_at = $4,
                             error_type = 'StepTimedOut', error_message = $5
    WHERE run_id = $1 AND step_id = $2 AND attempt = $3
)
UPDATE steps SET status = 'timed_out', finished_at = $4, error_type = 'StepTimedOut',
                 error_message = $5
WHERE run_id = $1 AND step_id = $2 AND attempts <= $3
"""

_RETRYING = """
UPDATE steps SET status = 'retrying', next_retry_at = $3 WHERE run_id = $1 AND step_id = $2
"""

# Skipped and cancelled steps may never have been scheduled, so their row may be new.
_CLOSED = """
WITH attempt AS (
    UPDATE step_attempts SET status = $3, finished_at = $4
    WHERE run_id = $1 AND step_id = $2 AND status IN ('scheduled', 'running')
)
INSERT INTO steps (run_id, step_id, status, reason, finished_at)
VALUES ($1, $2, $3, $5, $4)
ON CONFLICT (run_id, step_id) DO UPDATE SET
    status = EXCLUDED.status, reason = EXCLUDED.reason, finished_at = EXCLUDED.finished_at,
    next_retry_at = NULL
"""


def writes(ev: Event) -> list[Write]:
    """The writes one step event makes to its step's rows."""
    ln = ("step", ev.run_id, getattr(ev, "step_id", None))
    match ev:
        case StepScheduled():
            args: tuple[Any, ...] = (ev.run_id, ev.step_id, ev.node_type, ev.attempt, ev.input,
                           ev.timeout_ms, ev.idempotency_key, ev.occurred_at)
            return [Write(ln, _SCHEDULED, args)]
        case StepStarted():
            args = (ev.run_id, ev.step_id, ev.attempt, ev.occurred_at, ev.worker_id)
            return [Write(ln, _STARTED, args)]
        case StepSucceeded():
            args = (ev.run_id, ev.step_id, ev.attempt, ev.occurred_at, ev.output, ev.duration_ms)
            return [Write(ln, _SUCCEEDED, args)]
        case StepFailed():
            args = (ev.run_id, ev.step_id, ev.attempt, ev.occurred_at, ev.error_type,
                    ev.message, ev.retryable)
            return [Write(ln, _FAILED, args)]
        case StepTimedOut():
            args = (ev.run_id, ev.step_id, ev.attempt, ev.occurred_at,
                    f"attempt {ev.attempt} ran past {ev.timeout_ms} ms")
            return [Write(ln, _TIMED_OUT, args)]
        case StepRetryScheduled():
            return [Write(ln, _RETRYING, (ev.run_id, ev.step_id, ev.retry_at))]
        case StepSkipped():
            args = (ev.run_id, ev.step_id, "skipped", ev.occurred_at, ev.reason)
            return [Write(ln, _CLOSED, args)]
        case StepCancelled():
            args = (ev.run_id, ev.step_id, "cancelled", ev.occurred_at, ev.reason)
            return [Write(ln, _CLOSED, args)]
    return []
