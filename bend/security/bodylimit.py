"""ASGI middleware refusing request bodies over a size limit with 413 problem+json."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bend.security.errors import BodyTooLarge

__all__ = ["BodySizeLimit", "problem_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Exceeded(Exception):
    """Raised inside the app's `receive` when the body passes the limit (never escapes)."""


def problem_body(err: BodyTooLarge, problem_type: str = "about:blank") -> bytes:
    """The RFC 9457 problem document for `err`."""
    return json.dumps(
        {
            "type": problem_type,
            "title": "Content Too Large",
            "status": err.status,
            "detail": err.message,
            "code": err.code,
            "limit_bytes": err.limit_bytes,
        }
    ).encode()


class BodySizeLimit:
    """Answers 413 when a request declares (Content-Length) or streams more than `max_bytes`.

    Streamed bytes are counted as the app reads them, so chunked bodies without a length are
    caught too. Whatever the app answers to the cut-off body (FastAPI turns a failed read into
    400) is discarded and replaced by the 413, unless the app had already started a response.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, problem_type: str = "about:blank") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.problem_type = problem_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(send)  # without reading a byte of it
            return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _Exceeded()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it could not read whole
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        """Send the 413 problem document and close the connection (the body was not read)."""
        body = problem_body(BodyTooLarge(self.max_bytes), self.problem_type)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length, or None when absent or not a number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
