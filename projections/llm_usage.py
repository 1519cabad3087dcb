"""Projects AgentLlmCallRecorded into `llm_usage`: calls, tokens and latency per run and model."""

from __future__ import annotations

from bend.core.events import AgentLlmCallRecorded
from projections.writes import Write

__all__ = ["writes"]

# Sums are safe because the run gate lets each call event through once.
_ADD = """
INSERT INTO llm_usage (run_id, model, workflow_id, calls, prompt_tokens, completion_tokens,
                       latency_ms)
VALUES ($1, $2, $3, 1, $4, $5, $6)
ON CONFLICT (run_id, model) DO UPDATE SET
    calls = llm_usage.calls + 1,
    prompt_tokens = llm_usage.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = llm_usage.completion_tokens + EXCLUDED.completion_tokens,
    latency_ms = llm_usage.latency_ms + EXCLUDED.latency_ms
"""


def writes(ev: AgentLlmCallRecorded) -> list[Write]:
    """Add one call to its run's and model's totals."""
    return [Write(("llm", ev.run_id, ev.model), _ADD,
                  (ev.run_id, ev.model, ev.workflow_id, ev.prompt_tokens, ev.completion_tokens,
                   ev.latency_ms))]
