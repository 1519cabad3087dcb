"""One OpenAI-compatible chat-completions call: breaker, bounded retries, and its record."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bend.tracing import call_span, http_attributes, inject_http, note_http_status, note_llm_usage
from streams.executors.circuits import target_of
from streams.executors.context import ExecutionContext
from streams.executors.errors import (
    CircuitOpen, LlmBadResponse, LlmRejected, LlmUnavailable, RetryableStepError,
)
from streams.executors.outcome import Recorder

__all__ = ["LlmEndpoint", "chat"]

log = structlog.get_logger(__name__)

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class LlmEndpoint:
    """Where the model answers; `api_key` is the resolved secret (never logged)."""

    base_url: str
    api_key: str | None = None
    timeout_s: float = 60.0

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        return self.base_url.rstrip("/") + "/chat/completions"

    def __repr__(self) -> str:
        return f"LlmEndpoint({self.base_url!r}, api_key={'***' if self.api_key else None})"


def _check(body: Any) -> dict[str, Any]:
    try:
        message = body["choices"][0]["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not an object")
    except (KeyError, IndexError, TypeError) as exc:
        raise LlmBadResponse(f"the model endpoint answered no chat completion ({exc!r}); "
                             "check that base_url points at an OpenAI-compatible API") from exc
    completion: dict[str, Any] = body
    return completion


async def _post(ctx: ExecutionContext, endpoint: LlmEndpoint,
                request: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    try:
        # With a key, never follow a redirect: the key goes to the host it allows, nowhere else.
        response = await ctx.http.post(endpoint.url, json=request, headers=inject_http(headers),
                                       timeout=endpoint.timeout_s,
                                       follow_redirects=not endpoint.api_key)
    except httpx.TimeoutException as exc:
        raise LlmUnavailable(f"the model at {endpoint.base_url} did not answer within "
                             f"{endpoint.timeout_s:g} s; it is retried") from exc
    except httpx.TransportError as exc:
        raise LlmUnavailable(f"the model at {endpoint.base_url} is unreachable "
                             f"({type(exc).__name__}); it is retried, check it is up") from exc
    status = response.status_code
    note_http_status(status)
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise LlmUnavailable(f"the model at {endpoint.base_url} answered {status}: "
                             f"{response.text[:200]}; it is retried")
    if not response.is_success:
        raise LlmRejected(f"the model at {endpoint.base_url} refused the request with "
                          f"{status}: {response.text[:300]}; check the model name, the "
                          "api_key secret and the request")
    try:
        return _check(response.json())
    except ValueError as exc:
        raise LlmBadResponse(f"the model at {endpoint.base_url} answered non-JSON: "
                             f"{response.text[:200]}") from exc


def _retryable(exc: BaseException) -> bool:
    # An open circuit is not retried here: the step fails now and its retry policy waits.
    return isinstance(exc, RetryableStepError) and not isinstance(exc, CircuitOpen)


async def chat(ctx: ExecutionContext, endpoint: LlmEndpoint, request: dict[str, Any],
               recorder: Recorder) -> dict[str, Any]:
    """POST `request`, retrying 5xx/429/timeouts a few times; record and return the response."""
    target = target_of(endpoint.base_url)
    model = str(request.get("model") or "")
    attributes = {**http_attributes("POST", endpoint.url), "gen_ai.operation.name": "chat",
                  "gen_ai.request.model": model}
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ctx.llm_call_attempts),
        wait=wait_exponential(multiplier=ctx.llm_retry_wait_s, max=5.0),
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            started = time.perf_counter()
            with call_span(f"chat {model}", attributes):  # one span per try
                async with ctx.circuits.guard(target, ctx.clock):
                    response = await _post(ctx, endpoint, request)
                note_llm_usage(response)
            latency_ms = int((time.perf_counter() - started) * 1000)
    usage = response.get("usage") or {}
    record = recorder.llm_call(
        model=str(request.get("model") or response.get("model") or ""), request=request,
        response=response, prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0), latency_ms=latency_ms,
    )
    log.info("llm_call", call_index=record.call_index, model=record.model,
             prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
             latency_ms=latency_ms,
             finish_reason=(response["choices"][0].get("finish_reason")))
    return response
