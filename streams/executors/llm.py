"""One model call: breaker, bounded retries, and its record.

The endpoint speaks OpenAI chat completions or Anthropic's Messages API (streams/executors/
anthropic.py translates both ways); the loop always sees a chat completion, the record keeps the
request and response as sent and received, with the provider, endpoint and price of the call.

With a token sink in the context (`ctx.tokens`), the call asks the model to stream: its text goes
to the side channel as it comes (streams/executors/tokens.py) and the stream is put back together
(streams/executors/streamed.py), so the call is recorded as the non-streamed call would be: the
request without the streaming flags, the response the model would have answered whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bend.ops.metrics import llm_cost
from bend.tracing import call_span, http_attributes, inject_http, note_http_status, note_llm_usage
from streams.executors.anthropic import completion_of, messages_request
from streams.executors.circuits import target_of
from streams.executors.context import ExecutionContext
from streams.executors.errors import (
    CircuitOpen, LlmBadResponse, LlmRejected, LlmUnavailable, RetryableStepError, StepError,
)
from streams.executors.outcome import Recorder
from streams.executors.streamed import (
    AnthropicAssembly, OpenAiAssembly, sse_data, streaming_request,
)
from streams.executors.tokens import TokenSink, TokenStream

__all__ = ["LlmEndpoint", "chat"]

log = structlog.get_logger(__name__)

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class LlmEndpoint:
    """Where the model answers; `api_key` is the resolved secret (never logged)."""

    base_url: str
    api_key: str | None = None
    timeout_s: float = 60.0
    provider: str = "openai"  # openai | anthropic
    native_schema: bool = True  # an output_schema goes in `response_format` (else: instructions)

    @property
    def url(self) -> str:
        """The chat-completions (or Messages API) URL."""
        path = "/messages" if self.provider == "anthropic" else "/chat/completions"
        return self.base_url.rstrip("/") + path

    def headers(self, anthropic_version: str) -> dict[str, str]:
        """The request's authentication (and API version) headers."""
        if self.provider == "anthropic":
            return {"anthropic-version": anthropic_version,
                    **({"x-api-key": self.api_key} if self.api_key else {})}
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def __repr__(self) -> str:
        return (f"LlmEndpoint({self.base_url!r}, {self.provider}, "
                f"api_key={'***' if self.api_key else None})")


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


def _refused(endpoint: LlmEndpoint, status: int, text: str) -> None:
    """Raise for an answer that is no success: retried (5xx, 429, ...) or not (other 4xx)."""
    note_http_status(status)
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise LlmUnavailable(f"the model at {endpoint.base_url} answered {status}: "
                             f"{text[:200]}; it is retried")
    if not 200 <= status < 300:
        raise LlmRejected(f"the model at {endpoint.base_url} refused the request with "
                          f"{status}: {text[:300]}; check the model name, the "
                          "api_key secret and the request")


def _unavailable(endpoint: LlmEndpoint, exc: httpx.HTTPError) -> LlmUnavailable:
    if isinstance(exc, httpx.TimeoutException):
        return LlmUnavailable(f"the model at {endpoint.base_url} did not answer within "
                              f"{endpoint.timeout_s:g} s; it is retried")
    return LlmUnavailable(f"the model at {endpoint.base_url} is unreachable "
                          f"({type(exc).__name__}); it is retried, check it is up")


async def _post(ctx: ExecutionContext, endpoint: LlmEndpoint,
                request: dict[str, Any]) -> dict[str, Any]:
    headers = endpoint.headers(ctx.llm.anthropic_version)
    try:
        # With a key, never follow a redirect: the key goes to the host it allows, nowhere else.
        response = await ctx.http.post(endpoint.url, json=request, headers=inject_http(headers),
                                       timeout=endpoint.timeout_s,
                                       follow_redirects=not endpoint.api_key)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise _unavailable(endpoint, exc) from exc
    _refused(endpoint, response.status_code, response.text)
    return _whole(endpoint, response)


def _whole(endpoint: LlmEndpoint, response: httpx.Response) -> dict[str, Any]:
    """The answer of a non-streamed call; LlmBadResponse if it is none."""
    try:
        body = response.json()
        if endpoint.provider == "anthropic":
            completion_of(body)  # raises LlmBadResponse if it is no Messages API response
            answer: dict[str, Any] = body
            return answer
        return _check(body)
    except ValueError as exc:
        raise LlmBadResponse(f"the model at {endpoint.base_url} answered non-JSON: "
                             f"{response.text[:200]}") from exc


async def _post_streamed(ctx: ExecutionContext, endpoint: LlmEndpoint, request: dict[str, Any],
                         tokens: TokenStream) -> dict[str, Any]:
    """`_post`, the model streaming: its text goes to `tokens` as it comes; the answer is the
    response a non-streamed call gets."""
    headers = endpoint.headers(ctx.llm.anthropic_version)
    assembly = AnthropicAssembly() if endpoint.provider == "anthropic" else OpenAiAssembly()
    try:
        async with ctx.http.stream("POST", endpoint.url,
                                   json=streaming_request(request, endpoint.provider),
                                   headers=inject_http(headers), timeout=endpoint.timeout_s,
                                   follow_redirects=not endpoint.api_key) as response:
            if not response.is_success:
                await response.aread()
                _refused(endpoint, response.status_code, response.text)
            note_http_status(response.status_code)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()  # an endpoint that does not stream answers whole
                return _whole(endpoint, response)
            async for line in response.aiter_lines():
                data = sse_data(line)
                if data is not None:
                    await tokens.add(assembly.feed(data))
                if assembly.done:
                    break
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise _unavailable(endpoint, exc) from exc
    finally:
        await tokens.close()
    received = assembly.result()
    if endpoint.provider == "anthropic":
        completion_of(received)
        return received
    return _check(received)


async def _token_stream(ctx: ExecutionContext, sink: TokenSink,
                        recorder: Recorder) -> TokenStream:
    """Where this call's text goes, the project's secrets masked (none if they cannot be)."""
    task = recorder.task
    try:
        redactor = await ctx.secrets.redactor(task.project)
    except StepError as exc:  # nothing may leave unmasked: stream to no one
        log.warning("agent_tokens_not_redactable", error=exc.message)
        return TokenStream(None, task.run_id or "", task.step_id, task.attempt,
                           recorder.next_index)
    return TokenStream(sink, task.run_id or "", task.step_id, task.attempt,
                       recorder.next_index, redactor=redactor)


def _retryable(exc: BaseException) -> bool:
    # An open circuit is not retried here: the step fails now and its retry policy waits.
    return isinstance(exc, RetryableStepError) and not isinstance(exc, CircuitOpen)


async def chat(ctx: ExecutionContext, endpoint: LlmEndpoint, request: dict[str, Any],
               recorder: Recorder, fallback: int = 0) -> dict[str, Any]:
    """POST `request` (a chat-completions request, translated for the endpoint's provider),
    retrying 5xx/429/timeouts a few times; record the call, return it as a chat completion."""
    target = target_of(endpoint.base_url)
    model = str(request.get("model") or "")
    sent = request
    if endpoint.provider == "anthropic":
        sent = messages_request(request, ctx.llm.anthropic_max_tokens)
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
                    if ctx.tokens is None:
                        received = await _post(ctx, endpoint, sent)
                    else:
                        stream = await _token_stream(ctx, ctx.tokens, recorder)
                        received = await _post_streamed(ctx, endpoint, sent, stream)
                response = (completion_of(received) if endpoint.provider == "anthropic"
                            else received)
                note_llm_usage(response)
            latency_ms = int((time.perf_counter() - started) * 1000)
    usage = response.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    model = model or str(response.get("model") or "")
    record = recorder.llm_call(
        model=model, request=sent, response=received, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, latency_ms=latency_ms, provider=endpoint.provider,
        endpoint=endpoint.base_url, fallback=fallback,
        cost_usd=llm_cost(model, prompt_tokens, completion_tokens, ctx.prices),
    )
    log.info("llm_call", call_index=record.call_index, model=record.model,
             provider=endpoint.provider, fallback=fallback,
             prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
             latency_ms=latency_ms,
             finish_reason=(response["choices"][0].get("finish_reason")))
    return response
