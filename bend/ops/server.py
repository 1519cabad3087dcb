"""Each process's ops server: `/metrics`, `/livez` and `/readyz` on `BEND_OPS__HOST:PORT`.

It answers from a thread of its own, so a scrape or a probe never waits for the event loop;
liveness reads the loop's heartbeat instead. Port 0 picks a free port and logs it
(`ops_listening`), so several processes on one machine never clash.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

from bend.ops.health import Check, Heartbeat, run_checks
from bend.ops.metrics import set_role
from bend.settings import OpsSettings

__all__ = ["LIVENESS_PATH", "METRICS_PATH", "OpsServer", "READINESS_PATH", "start_ops_server"]

METRICS_PATH = "/metrics"
LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"

log = structlog.get_logger(__name__)

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hung scrape never keeps the process alive


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds would drown the logs


class OpsServer:
    """Serves metrics, liveness and readiness for one process until `stop()`."""

    def __init__(self, settings: OpsSettings, role: str, *,
                 checks: Mapping[str, Check] | None = None, heartbeat: Heartbeat | None = None,
                 registry: CollectorRegistry = REGISTRY) -> None:
        self.settings = settings
        self.role = role
        self.checks: dict[str, Check] = dict(checks or {})
        self.heartbeat = heartbeat
        self._metrics: Callable[[dict[str, Any], StartResponse], Iterable[bytes]] = (
            make_wsgi_app(registry))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when the settings say 0)."""
        assert self._server is not None, "start() the server first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """`http://host:port` of the running server."""
        return f"http://{self.settings.host}:{self.port}"

    def start(self) -> OpsServer:
        """Bind and serve from a daemon thread; logs `ops_listening` with the address."""
        self._server = make_server(self.settings.host, self.settings.port, self._app,
                                   server_class=_Server, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"bend-ops-{self.role}", daemon=True)
        self._thread.start()
        set_role(self.role)
        log.info("ops_listening", role=self.role, host=self.settings.host, port=self.port,
                 url=self.url, paths=[METRICS_PATH, LIVENESS_PATH, READINESS_PATH])
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the process's loop still beats, and the body saying so."""
        if self.heartbeat is None:
            return True, {"live": True}
        since = round(self.heartbeat.since_s(), 3)
        live = self.heartbeat.live()
        body: dict[str, Any] = {"live": live, "since_last_beat_s": since}
        if not live:
            body["detail"] = (f"the event loop has not run for {since:g} s (more than "
                              f"{self.heartbeat.stall_after_s:g} s): it is blocked or stuck")
        return live, body

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Run the checks (side by side, each within the settings' timeout) in a loop of this
        thread's own."""
        report = asyncio.run(run_checks(self.checks, self.settings.check_timeout_s))
        return report.ready, report.body() | {"role": self.role}

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            return self._metrics(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _json(start_response, 405, {"detail": "only GET"})
        if path == LIVENESS_PATH:
            ok, body = self.liveness()
        elif path == READINESS_PATH:
            ok, body = self.readiness()
        else:
            return _json(start_response, 404, {
                "detail": f"no {path}; try {METRICS_PATH}, {LIVENESS_PATH} or {READINESS_PATH}"})
        return _json(start_response, 200 if ok else 503, body)


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
              503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(data))),
                                          ("Cache-Control", "no-store")])
    return [data]


def start_ops_server(settings: OpsSettings, role: str, *,
                     checks: Mapping[str, Check] | None = None,
                     heartbeat: Heartbeat | None = None) -> OpsServer | None:
    """Start the ops server unless `BEND_OPS__ENABLED=false`."""
    if not settings.enabled:
        log.info("ops_disabled", role=role)
        return None
    return OpsServer(settings, role, checks=checks, heartbeat=heartbeat).start()
