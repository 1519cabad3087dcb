"""The http executor: one request per attempt, carrying the step's idempotency key.

Header values and the body may name secrets of the run's project as `{{ secrets.NAME }}`: the
executor puts each value in just before sending, to a host the secret allows, and follows no
redirect with it. The task (and so the run log) keeps the reference, never the value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bend.core.events import StepScheduled
from bend.core.expressions import as_text
from bend.core.secret_refs import SECRET_REFERENCE
from bend.tracing import call_span, http_attributes, inject_http, note_http_status
from streams.executors.circuits import target_of
from streams.executors.context import ExecutionContext
from streams.executors.errors import (
    InvalidStepInput, StepError, StepTimeout, TargetFailed, TargetRejected,
)
from streams.executors.inputs import parse_input
from streams.executors.outcome import StepOutcome

__all__ = ["HttpInput", "execute", "parse"]

log = structlog.get_logger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_DEFAULT_TIMEOUT_S = 30.0
_SNIPPET = 300


# Header and query values come from templates: non-strings are sent as templates render them.
_Texts = Annotated[dict[str, str], BeforeValidator(
    lambda v: {k: as_text(x) for k, x in v.items()} if isinstance(v, dict) else v)]
_Query = Annotated[dict[str, str | list[str]], BeforeValidator(
    lambda v: {k: [as_text(i) for i in x] if isinstance(x, list) else as_text(x)
               for k, x in v.items()} if isinstance(v, dict) else v)]


class HttpInput(BaseModel):
    """An http node's evaluated configuration (bend.core.definitions.HttpStep's fields)."""

    model_config = ConfigDict(extra="ignore")

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(pattern=r"^https?://")
    headers: _Texts = Field(default_factory=dict)
    query: _Query = Field(default_factory=dict)
    body: Any = None
    timeout_s: float | None = Field(default=None, gt=0)  # else the step's timeout, else 30 s


def parse(value: Any, timeout_ms: int | None = None) -> HttpInput:
    """The task's input as an `HttpInput`; the request times out with the step."""
    if isinstance(value, dict) and isinstance(value.get("method"), str):
        value = {**value, "method": value["method"].upper()}
    spec = parse_input(HttpInput, "http", value)
    if spec.timeout_s is None:
        spec = spec.model_copy(update={"timeout_s": timeout_ms / 1000 if timeout_ms else
                                       _DEFAULT_TIMEOUT_S})
    return spec


def _body(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass  # a server lying about its content type: hand back the text
    return response.text


def _references(value: Any) -> set[str]:
    """The secret names `{{ secrets.NAME }}` in the strings of `value`."""
    if isinstance(value, str):
        return set(SECRET_REFERENCE.findall(value))
    if isinstance(value, dict):
        return {n for v in value.values() for n in _references(v)}
    if isinstance(value, list):
        return {n for v in value for n in _references(v)}
    return set()


def _filled(value: Any, values: dict[str, str]) -> Any:
    """`value` with each `{{ secrets.NAME }}` replaced by its value."""
    if isinstance(value, str):
        return SECRET_REFERENCE.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _filled(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, values) for v in value]
    return value


async def with_secrets(spec: HttpInput, task: StepScheduled,
                       ctx: ExecutionContext) -> tuple[HttpInput, bool]:
    """`spec` with the secrets its headers and body name filled in, and whether any were."""
    if _references(spec.url) or _references(spec.query):
        raise InvalidStepInput("http", "secrets may be named in headers and the body only, not "
                               "in the url or query (URLs are recorded and logged)")
    names = _references(spec.headers) | _references(spec.body)
    if not names:
        return spec, False
    values = {n: (await ctx.secrets.secret(n, task.project)).for_url(spec.url) for n in names}
    return spec.model_copy(update={"headers": _filled(spec.headers, values),
                                   "body": _filled(spec.body, values)}), True


async def _send(spec: HttpInput, idempotency_key: str, ctx: ExecutionContext,
                carries_secrets: bool = False) -> httpx.Response:
    headers = dict(spec.headers)
    if idempotency_key and not any(k.lower() == "idempotency-key" for k in headers):
        headers["Idempotency-Key"] = idempotency_key
    content = spec.body if isinstance(spec.body, (str, bytes)) else None
    json_body = spec.body if content is None and spec.body is not None else None
    where = f"{spec.method} {spec.url.split('?', 1)[0]}"
    try:
        # Merge, not replace: the URL's own query string stays (httpx `params=` would drop it).
        url = httpx.URL(spec.url).copy_merge_params(spec.query) if spec.query else spec.url
        response = await ctx.http.request(
            spec.method, url, headers=inject_http(headers),
            content=content, json=json_body, timeout=spec.timeout_s,
            # A redirect could take the secrets elsewhere: with them, the 3xx is the answer.
            follow_redirects=not carries_secrets,
        )
        note_http_status(response.status_code)
    except httpx.TimeoutException as exc:
        raise StepTimeout(where, spec.timeout_s or 0) from exc
    except httpx.TransportError as exc:
        raise TargetFailed(f"{where} could not be sent ({type(exc).__name__}: {exc}); "
                           "it is retried, check that the target is up") from exc
    if response.is_success:
        return response
    snippet = response.text[:_SNIPPET]
    said = f"{where} answered {response.status_code}: {snippet}"
    if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS:
        raise TargetFailed(f"{said}; it is retried")
    raise TargetRejected(f"{said}; the request must change (a retry gets the same answer)")


async def execute(task: StepScheduled, ctx: ExecutionContext) -> StepOutcome:
    """Send the step's request; 2xx → {status, headers, body}, else a typed failure."""
    try:
        spec = parse(task.input, task.timeout_ms)
        sendable, carries_secrets = await with_secrets(spec, task, ctx)
        with call_span(spec.method, http_attributes(spec.method, spec.url)):
            async with ctx.circuits.guard(target_of(spec.url), ctx.clock):
                response = await _send(sendable, task.idempotency_key, ctx, carries_secrets)
    except StepError as exc:
        return StepOutcome.failure(exc)
    log.debug("http_step_answered", status=response.status_code)
    return StepOutcome.success({
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": _body(response),
    })
