"""An executor paused past its session (SIGSTOP) loses its partitions; when it resumes (SIGCONT)
it must not report the task it was running: the new owner runs it and reports it.

The first executor's request is answered while it is paused (its outcome waits in the socket);
the new owner's request is held a few seconds, so the paused executor wakes while that attempt
is still out, which is when a stale report would be accepted. Real Kafka, orchestrator and
two executor processes; a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bend.core.events import RunCompleted, StepFailed, StepScheduled, StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

class Upstream:
    """Answers the n-th request with {"n": n} after `hold_s[n]` seconds; notes each request."""

    def __init__(self) -> None:
        self.hold_s: dict[int, float] = {}
        self.requests: list[tuple[float, str]] = []  # (arrival, idempotency key)
        self.changed = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer.changed:
                    outer.requests.append((time.monotonic(),
                                           self.headers.get("idempotency-key", "")))
                    n = len(outer.requests)
                    outer.changed.notify_all()
                time.sleep(outer.hold_s.get(n, 0.0))
                body = json.dumps({"n": n}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client went away

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.requests) >= count, timeout_s)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def engine(kafka_bootstrap: str) -> Iterator[Engine]:
    with running_engine(executors=1) as engine:
        yield engine


async def test_an_executor_paused_past_its_session_does_not_report_the_task_it_lost(
        engine: Engine, upstream: Upstream) -> None:
    workflow = {"name": "fenced", "steps": [
        {"id": "call", "type": "http", "method": "POST",
         "url": f"http://127.0.0.1:{upstream.port}/pay", "body": {"amount": 1},
         "timeout": "30s", "retry": {"max_attempts": 3, "initial_interval": "200ms"}}]}
    upstream.hold_s = {1: 1.0, 2: 3.0}  # answered while paused; the takeover's is held
    start = engine.start_run(workflow, {})
    first = next(p for p in engine.workers.processes if p.role == "executor")
    paused_at = 0.0
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings) as producer:
        await producer.send_many([start])
        assert await asyncio.to_thread(upstream.wait_for, 1, 60), "the step never ran"
        os.kill(first.pid, signal.SIGSTOP)
        paused_at = time.monotonic()
        try:
            engine.workers.start("executor", wait=False)  # the group moves the partitions here
            assert await asyncio.to_thread(upstream.wait_for, 2, 90), \
                "the second executor never took the task over"
        finally:
            os.kill(first.pid, signal.SIGCONT)  # while the takeover's attempt is still out
        paused_s = time.monotonic() - paused_at
        done = await watcher.wait_finished([start.run_id], timeout_s=60)
        await asyncio.sleep(2)  # anything the first executor would still report
    events = watcher.events[start.run_id]
    first_log = first.log_path.read_text(errors="replace")
    withheld = "report_withheld" in first_log
    print(f"paused {paused_s:.1f} s; requests {len(upstream.requests)}; "
          f"first executor withheld its report: {withheld}")
    assert isinstance(done[start.run_id], RunCompleted), done[start.run_id]
    keys = [key for _, key in upstream.requests]
    # one attempt, run twice (the takeover) under its own key; never a third time
    assert keys == [f"{start.run_id}:call:1"] * 2, keys
    assert not [e for e in events if isinstance(e, StepFailed)]
    succeeded = [e for e in events if isinstance(e, StepSucceeded)]
    assert [e.output["body"] for e in succeeded] == [{"n": 2}], \
        "the run took the paused executor's report, not the new owner's"
    assert [e.attempt for e in events if isinstance(e, StepScheduled)] == [1]
    assert withheld


async def test_an_executor_evicted_while_a_rebalance_waits_for_its_step_does_not_report_it(
        engine: Engine, upstream: Upstream) -> None:
    """A rebalance waits for a running step's end (Faust revokes only once every task is acked),
    but the group waits for the worker only the rebalance timeout: past it, the partitions go to
    the others, who run the task again, and the slow worker's report is stale."""
    upstream.hold_s = {1: 12.0, 2: 5.0}
    workflow = {"name": "evicted", "steps": [
        {"id": "call", "type": "http", "method": "POST",
         "url": f"http://127.0.0.1:{upstream.port}/pay", "body": {"amount": 1},
         "timeout": "30s", "retry": {"max_attempts": 3, "initial_interval": "200ms"}}]}
    start = engine.start_run(workflow, {})
    first = next(p for p in engine.workers.processes if p.role == "executor")
    async with RunWatcher(engine.settings) as watcher, \
            RecordProducer(engine.settings) as producer:
        await producer.send_many([start])
        assert await asyncio.to_thread(upstream.wait_for, 1, 60), "the step never ran"
        engine.workers.start("executor", wait=False)  # a join: the group rebalances
        done = await watcher.wait_finished([start.run_id], timeout_s=90)
        await asyncio.sleep(2)
    events = watcher.events[start.run_id]
    keys = [key for _, key in upstream.requests]
    print(f"requests {keys}; outputs "
          f"{[e.output['body'] for e in events if isinstance(e, StepSucceeded)]}")
    assert isinstance(done[start.run_id], RunCompleted), done[start.run_id]
    assert not [e for e in events if isinstance(e, StepFailed)]
    succeeded = [e for e in events if isinstance(e, StepSucceeded)]
    assert len(upstream.requests) == 2, keys  # the evicted one's, the new owner's
    assert [e.output["body"] for e in succeeded] == [{"n": 2}], \
        "the run took the evicted executor's report, not the new owner's"
    assert "report_withheld" in first.log_path.read_text(errors="replace")
