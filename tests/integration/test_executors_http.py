"""The http executor against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from bend.components import Registry
from bend.core.circuit import CircuitPolicy, CircuitState
from bend.core.events import StepScheduled
from bend.devstack.llm_server import ServerHandle, serve_in_background
from streams.executors import CircuitBreakers, DictSecrets, ExecutionContext, execute

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def target_app() -> FastAPI:
    """Endpoints answering with chosen statuses, bodies and delays; counts requests."""
    app = FastAPI()
    app.state.hits = 0

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        app.state.hits += 1
        return await call_next(request)

    @app.api_route("/echo", methods=["GET", "POST", "PUT"])
    async def echo(request: Request) -> dict:
        raw = await request.body()
        return {"method": request.method, "query": dict(request.query_params),
                "idempotency_key": request.headers.get("idempotency-key"),
                "trace": request.headers.get("x-trace"), "body": raw.decode()}

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("plain words", headers={"x-answer": "42"})

    @app.get("/status/{code}")
    async def status(code: int) -> JSONResponse:
        return JSONResponse({"detail": f"you asked for {code}"}, status_code=code)

    @app.get("/slow")
    async def slow(s: float) -> dict:
        await asyncio.sleep(s)
        return {"slept": s}

    return app


@pytest.fixture(scope="module")
def target() -> Iterator[ServerHandle]:
    """The target server, one per module."""
    app = target_app()
    handle = serve_in_background(app)
    handle.app = app  # type: ignore[attr-defined]
    yield handle
    handle.stop()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def ctx() -> AsyncIterator[ExecutionContext]:
    """A fresh context per test (fresh breakers), with a hand-moved clock."""
    async with httpx.AsyncClient() as client:
        yield ExecutionContext(http=client, registry=Registry(), secrets=DictSecrets(),
                               circuits=CircuitBreakers(CircuitPolicy(3, timedelta(seconds=30))),
                               clock=Clock())


def http_step(project: str = "default", **node: Any) -> StepScheduled:
    """An http step of run-1 (of `project`) with `node` as its evaluated configuration."""
    return StepScheduled(event_id="ev-1", run_id="run-1", workflow_id="wf", occurred_at=T0,
                         step_id="call", node_type="http", input=node,
                         idempotency_key="run-1:call:1", project=project)


async def test_a_2xx_json_answer_becomes_status_headers_and_parsed_body(target, ctx) -> None:
    out = await execute(http_step(method="post", url=f"{target.url}/echo?x=1",
                                  query={"y": 2}, body={"a": [1, 2]}), ctx)
    assert out.succeeded, out.message
    assert out.output["status"] == 200
    assert out.output["headers"]["content-type"] == "application/json"
    body = out.output["body"]
    assert body["method"] == "POST" and body["query"] == {"x": "1", "y": "2"}
    assert body["body"] == '{"a":[1,2]}'


async def test_every_request_carries_the_steps_idempotency_key(target, ctx) -> None:
    out = await execute(http_step(url=f"{target.url}/echo"), ctx)
    assert out.output["body"]["idempotency_key"] == "run-1:call:1"


async def test_the_nodes_own_headers_are_sent_and_its_idempotency_key_wins(target, ctx) -> None:
    out = await execute(http_step(url=f"{target.url}/echo",
                                  headers={"X-Trace": "t1", "idempotency-key": "mine"}), ctx)
    assert out.output["body"]["trace"] == "t1"
    assert out.output["body"]["idempotency_key"] == "mine"


async def test_a_text_answer_is_returned_as_text(target, ctx) -> None:
    out = await execute(http_step(url=f"{target.url}/text"), ctx)
    assert out.output["body"] == "plain words" and out.output["headers"]["x-answer"] == "42"


async def test_a_text_body_is_sent_as_is(target, ctx) -> None:
    out = await execute(http_step(method="PUT", url=f"{target.url}/echo", body="raw text"), ctx)
    assert out.output["body"]["body"] == "raw text"


@pytest.mark.parametrize("code", [400, 401, 404, 422])
async def test_a_4xx_answer_fails_permanently_with_the_status(target, ctx, code) -> None:
    out = await execute(http_step(url=f"{target.url}/status/{code}"), ctx)
    assert (out.succeeded, out.error_type, out.retryable) == (False, "TargetRejected", False)
    assert f"answered {code}" in (out.message or "") and "you asked for" in (out.message or "")


@pytest.mark.parametrize("code", [500, 502, 503, 429, 408])
async def test_a_5xx_or_429_answer_fails_retryably(target, ctx, code) -> None:
    out = await execute(http_step(url=f"{target.url}/status/{code}"), ctx)
    assert (out.error_type, out.retryable) == ("TargetFailed", True)


async def test_a_request_past_its_timeout_fails_retryably(target, ctx) -> None:
    out = await execute(http_step(url=f"{target.url}/slow?s=1", timeout_s=0.1), ctx)
    assert (out.error_type, out.retryable) == ("StepTimeout", True)
    assert "0.1 s" in (out.message or "")


async def test_without_its_own_timeout_a_request_times_out_with_the_step(target, ctx) -> None:
    out = await execute(replace(http_step(url=f"{target.url}/slow?s=1.5"), timeout_ms=200), ctx)
    assert (out.error_type, out.retryable) == ("StepTimeout", True)
    assert "GET " in (out.message or ""), "the request's own timeout should fire first"
    assert ctx.circuits.breaker(target.url).consecutive_failures == 1


async def test_header_and_query_values_from_expressions_are_sent_as_text(target, ctx) -> None:
    out = await execute(http_step(url=f"{target.url}/echo", headers={"X-Trace": 7},
                                  query={"n": 3, "ok": True, "tags": ["a", "b"]}), ctx)
    assert out.output["body"]["trace"] == "7"
    assert out.output["body"]["query"] == {"n": "3", "ok": "true", "tags": "b"}


async def test_an_unreachable_target_fails_retryably(ctx) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = await execute(http_step(url=f"http://127.0.0.1:{port}/x"), ctx)
    assert (out.error_type, out.retryable) == ("TargetFailed", True)


async def test_a_malformed_node_fails_permanently_before_any_request(target, ctx) -> None:
    out = await execute(http_step(url="ftp://example/x"), ctx)
    assert (out.error_type, out.retryable) == ("InvalidStepInput", False)
    assert "url" in (out.message or "")


async def test_after_consecutive_5xx_the_breaker_opens_and_no_request_is_sent(target, ctx) -> None:
    failing = http_step(url=f"{target.url}/status/503")
    for _ in range(3):
        assert (await execute(failing, ctx)).error_type == "TargetFailed"
    hits = target.app.state.hits
    out = await execute(http_step(url=f"{target.url}/echo"), ctx)
    assert (out.error_type, out.retryable) == ("CircuitOpen", True)
    assert target.url in (out.message or "") and "2025-01-01T00:00:30" in (out.message or "")
    assert target.app.state.hits == hits, "an open breaker must not reach the target"
    ctx.clock.now += timedelta(seconds=30)
    assert (await execute(http_step(url=f"{target.url}/echo"), ctx)).succeeded
    assert [t.to_state for t in ctx.circuits.transitions] == [
        CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]
