"""A step's model and its fallbacks: each tried in turn on a retryable failure or an open circuit.

Each candidate gets the endpoint's own bounded retries (streams/executors/llm.py) first; a
permanent failure (a 4xx, a bad answer) is not passed on, since another model would not fix the
request. The call record says which candidate answered (`fallback`: 0 the step's own model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from streams.executors.context import ExecutionContext
from streams.executors.errors import RetryableStepError
from streams.executors.llm import LlmEndpoint, chat
from streams.executors.outcome import Recorder

__all__ = ["Candidate", "answer", "endpoint_of"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Candidate:
    """A model and its endpoint's configuration, resolved (key, provider) when first tried: a
    fallback's secret is read only if the fallback is needed."""

    model: str
    config: dict[str, Any]
    endpoint: LlmEndpoint | None = None


async def endpoint_of(ctx: ExecutionContext, project: str, model: str,
                      config: dict[str, Any]) -> LlmEndpoint:
    """The endpoint of a task's `llm` configuration, its key resolved and its provider chosen."""
    base_url = str(config["base_url"])
    secret = config.get("api_key_secret")
    api_key = (await ctx.secrets.secret(secret, project)).for_url(base_url) if secret else None
    provider = ctx.llm.provider_of(model, config.get("provider"))
    mode = config.get("structured_output") or (
        "response_format" if provider == "openai" else "instructions")
    return LlmEndpoint(base_url, api_key, config.get("timeout_s") or ctx.llm_timeout_s,
                       provider, native_schema=mode == "response_format")


async def answer(ctx: ExecutionContext, project: str, candidates: list[Candidate],
                 request: dict[str, Any], recorder: Recorder,
                 adapt: Callable[[dict[str, Any], LlmEndpoint], dict[str, Any]] | None = None,
                 ) -> tuple[dict[str, Any], LlmEndpoint, int]:
    """The first candidate's chat completion for `request`, trying the next on a retryable
    failure; with the endpoint that answered and its position. `adapt(request, endpoint)`
    fits the request to a candidate's endpoint."""
    for position, candidate in enumerate(candidates):
        if candidate.endpoint is None:
            candidate.endpoint = await endpoint_of(ctx, project, candidate.model, candidate.config)
        endpoint = candidate.endpoint
        sent = {**request, "model": candidate.model}
        if adapt is not None:
            sent = adapt(sent, endpoint)
        try:
            completion = await chat(ctx, endpoint, sent, recorder, fallback=position)
        except RetryableStepError as exc:
            if position == len(candidates) - 1:
                raise
            nxt = candidates[position + 1]
            log.warning("llm_fallback", model=candidate.model, error_type=exc.error_type,
                        next_model=nxt.model)
            continue
        return completion, endpoint, position
    raise AssertionError("a step has at least its own model")
