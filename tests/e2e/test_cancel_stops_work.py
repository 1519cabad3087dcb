"""Cancelling a run stops the work its executor is doing: the HTTP request of an http step and
the model call of an agent step are aborted (the server sees the connection closed), and the
step is recorded cancelled with the attempt that was out. Real Kafka, orchestrator and executor
processes; a local server on 127.0.0.1 that reads a request and never answers."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bend.core.events import RunCancelled, StepCancelled, StepScheduled
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ABORT_BOUND_S = 5.0  # from the CancelRun sent to the connection closed; the step allows 60 s


@dataclass
class Seen:
    """One request the blocking server read: when it came, when its client went away."""

    path: str
    arrived: float
    closed: float | None = None


@dataclass
class BlockingServer:
    """Reads each request and never answers; notes when the client closes the connection."""

    seen: list[Seen] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> int:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(90)  # bounded: the test is over long before
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                path = data.split(b" ", 2)[1].decode()
                entry = Seen(path, time.monotonic())
                with outer.changed:
                    outer.seen.append(entry)
                    outer.changed.notify_all()
                try:
                    while conn.recv(65536):  # the body, then nothing until the client leaves
                        pass
                except (TimeoutError, OSError):
                    return
                with outer.changed:
                    entry.closed = time.monotonic()
                    outer.changed.notify_all()

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def wait(self, predicate: Any, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout_s)


@pytest.fixture(scope="module")
def blocking() -> Iterator[tuple[BlockingServer, int]]:
    server = BlockingServer()
    port = server.start()
    yield server, port
    server.stop()


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str) -> Iterator[Engine]:
    with running_engine(executors=1) as engine:
        yield engine


def _http(port: int, tag: str) -> dict[str, Any]:
    return {"name": f"slow_http_{tag}", "steps": [
        {"id": "call", "type": "http", "method": "POST", "url": f"http://127.0.0.1:{port}/{tag}",
         "body": {"n": 1}, "timeout": "60s", "retry": {"max_attempts": 1}}]}


def _agent(port: int, tag: str) -> dict[str, Any]:
    return {"name": f"slow_agent_{tag}", "llm": {"base_url": f"http://127.0.0.1:{port}/{tag}"},
            "steps": [{"id": "call", "type": "agent", "model": "m", "prompt": "think slowly",
                       "timeout": "60s", "retry": {"max_attempts": 1}}]}


@pytest.mark.parametrize("kind", ["http", "agent"])
async def test_cancelling_a_run_aborts_its_running_step_and_records_it_cancelled(
        engine: Engine, blocking: tuple[BlockingServer, int], kind: str) -> None:
    server, port = blocking
    tag = f"{kind}-{time.monotonic_ns()}"
    start = engine.start_run((_http if kind == "http" else _agent)(port, tag), {})
    mine = lambda: [s for s in server.seen if s.path.startswith(f"/{tag}")]  # noqa: E731
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings) as producer:
        await producer.send_many([start])
        assert await asyncio.to_thread(server.wait, lambda: mine(), 60), \
            "the step's request never reached the server"
        await asyncio.sleep(0.5)  # well under way, and reported started
        cancelled_at = time.monotonic()
        await producer.send_many([engine.cancel_run(start, reason="changed my mind")])
        aborted = await asyncio.to_thread(
            server.wait, lambda: mine()[0].closed is not None, ABORT_BOUND_S + 5)
        done = await watcher.wait_finished([start.run_id], timeout_s=30)
    request = mine()[0]
    assert aborted and request.closed is not None, \
        f"the {kind} step's request was still open {ABORT_BOUND_S + 5} s after the cancel"
    assert request.closed - cancelled_at < ABORT_BOUND_S, request.closed - cancelled_at
    assert len(mine()) == 1  # stopped, not retried
    assert isinstance(done[start.run_id], RunCancelled)
    events = watcher.events[start.run_id]
    scheduled = [e for e in events if isinstance(e, StepScheduled) and e.step_id == "call"]
    cancelled = [e for e in events if isinstance(e, StepCancelled)]
    assert [(e.step_id, e.attempt) for e in cancelled] == [("call", scheduled[-1].attempt)]
    print(f"{kind}: request aborted {request.closed - cancelled_at:.3f} s after the cancel")
