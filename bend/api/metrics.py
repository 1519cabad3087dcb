"""Request metrics of the API: `bend_http_requests_total` and its latency, by route template."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bend.ops.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, set_role

__all__ = ["RequestMetrics"]


class RequestMetrics:
    """ASGI middleware counting each request by method, route template (never the raw path,
    which would make a series per run id) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        set_role("api")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route(scope)
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    """The matched route's template (`/api/executions/{run_id}`); a mount's prefix; or
    `unmatched`."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    root = scope.get("root_path") or ""
    return root or "unmatched"
