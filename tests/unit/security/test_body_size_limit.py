"""The body size middleware answers 413 problem+json, whether the size is declared or streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bend.security.bodylimit import BodySizeLimit

LIMIT = 1000


class Item(BaseModel):
    data: str


async def echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


def _starlette() -> Starlette:
    app = Starlette(routes=[Route("/echo", echo_length, methods=["POST"])])
    app.add_middleware(BodySizeLimit, max_bytes=LIMIT)
    return app


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def _assert_problem_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413 and problem["code"] == "body_too_large"
    assert problem["limit_bytes"] == LIMIT and str(LIMIT) in problem["detail"]
    assert {"type", "title"} <= problem.keys()


async def test_a_body_at_the_limit_passes_whole() -> None:
    async with _client(_starlette()) as client:
        response = await client.post("/echo", content=b"x" * LIMIT)
    assert response.status_code == 200 and response.json() == {"received": LIMIT}


async def test_a_declared_oversized_body_is_refused_before_the_app_runs() -> None:
    called = False

    async def app(scope: dict, receive: object, send: object) -> None:
        nonlocal called
        called = True

    async with _client(BodySizeLimit(app, max_bytes=LIMIT)) as client:
        response = await client.post("/anything", content=b"x" * (LIMIT + 1))
    _assert_problem_413(response)
    assert not called


async def test_a_streamed_oversized_body_without_length_is_refused() -> None:
    async with _client(_starlette()) as client:
        response = await client.post("/echo", content=_chunks(LIMIT + 1))
    _assert_problem_413(response)


async def test_a_streamed_body_within_the_limit_passes() -> None:
    async with _client(_starlette()) as client:
        response = await client.post("/echo", content=_chunks(LIMIT))
    assert response.json() == {"received": LIMIT}


async def test_a_fastapi_route_answers_413_not_its_own_400_for_a_cut_body() -> None:
    api = FastAPI()

    @api.post("/items")
    async def create(item: Item) -> dict[str, int]:
        return {"length": len(item.data)}

    api.add_middleware(BodySizeLimit, max_bytes=LIMIT)
    body = json.dumps({"data": "x" * 2000}).encode()

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 128):
            yield body[i:i + 128]

    async with _client(api) as client:
        small = await client.post("/items", json={"data": "abc"})
        large = await client.post("/items", content=stream(),
                                  headers={"content-type": "application/json"})
    assert small.json() == {"length": 3}
    _assert_problem_413(large)


def _asgi_call(chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> tuple[
        dict, object, object, list[dict]]:
    """A POST scope, a receive serving `chunks`, and a send recording what is sent."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": "/stream",
             "headers": headers or [], "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("test", 80), "client": ("127.0.0.1", 1)}
    return scope, receive, send, sent


async def test_a_response_already_started_is_cut_off_not_replaced_by_413() -> None:
    async def answer_first_then_read(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive())["more_body"]:  # type: ignore[operator]
            pass

    scope, receive, send, sent = _asgi_call([b"x" * 600, b"x" * 600])
    with pytest.raises(Exception):  # the server then drops the connection
        await BodySizeLimit(answer_first_then_read, max_bytes=LIMIT)(scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert all(m.get("status") != 413 for m in sent)


async def test_a_malformed_content_length_falls_back_to_counting() -> None:
    scope, receive, send, sent = _asgi_call([b"x" * 600, b"x" * 600],
                                            headers=[(b"content-length", b"lots")])
    scope["path"] = "/echo"
    await _starlette()(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413


async def test_websocket_and_lifespan_scopes_pass_through_untouched() -> None:
    seen: list[str] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.append(scope["type"])

    middleware = BodySizeLimit(app, max_bytes=1)
    for kind in ("websocket", "lifespan"):
        await middleware({"type": kind}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket", "lifespan"]
