"""Fault load (issue 17): RUNS runs of a two-step http chain under faults, counting the work done
more than once and the stall each fault causes.

Two orchestrators and two executors run as processes; every step POSTs to a local server on
127.0.0.1 that answers after `--latency-ms` and counts requests per Idempotency-Key. Runs start at
`--rate` per second. While they run, in turn: `kill -9` of an orchestrator (restarted), `kill -9`
of an executor (restarted), an executor paused `--pause-s` with SIGSTOP, then SIGCONT.

Reports: runs finished and how, steps that succeeded more than once (must be 0), steps whose
request ran more than once (same key: an attempt redelivered; a new key: another attempt) and
requests beyond one per step, and per fault the stall: the longest time without any step
succeeding in the `--window-s` after it (the load keeps steps succeeding ~20/s otherwise), and
the longest a single run waited between two of its events then (the partitions the fault hit).

    python -m bench.fault_load [--runs 1000] [--rate 10] [--pause-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bend.core.events import RunCompleted, StepSucceeded
from bend.devstack.engine import Engine, running_engine
from bend.kafka.producer import RecordProducer
from bend.runwatch import TERMINAL, RunWatcher
import itertools


class Upstream:
    """Answers each POST after `latency_s` with 200; counts requests per Idempotency-Key."""

    def __init__(self, latency_s: float) -> None:
        self.keys: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real API: no reset on reuse

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with lock:
                    key = self.headers.get("idempotency-key", "")
                    outer.keys[key] += 1
                    outer.arrivals.setdefault(key, []).append(time.perf_counter())
                time.sleep(latency_s)
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        # A restarted executor opens dozens of connections at once: the default backlog (5)
        # drops some, their steps fail, and the target's circuit opens.
        class Server(ThreadingHTTPServer):
            request_queue_size = 512

            def handle_error(self, *_: Any) -> None:
                pass  # a killed executor's connections reset: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def workflow(port: int) -> dict[str, Any]:
    """Two chained http steps with the default retry policy's three attempts."""
    url = f"http://127.0.0.1:{port}/pay"
    step = {"type": "http", "method": "POST", "url": url, "body": {"amount": 1},
            "timeout": "10s", "retry": {"max_attempts": 3, "initial_interval": "500ms"}}
    return {"name": "fault_load", "steps": [{"id": "a", **step},
                                            {"id": "b", **step, "after": ["a"]}]}


def _stall(succeeded_at: list[float], fault_at: float, window_s: float) -> float:
    """The longest time without a step succeeding in [fault_at, fault_at + window_s]."""
    times = [fault_at, *sorted(t for t in succeeded_at if fault_at < t < fault_at + window_s)]
    times.append(min(fault_at + window_s, max(succeeded_at, default=fault_at)))
    return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else window_s


def _run_stall(received: dict[str, list[float]], fault_at: float, window_s: float) -> float:
    """The longest a single run waited between two of its events, around the fault: a fault's
    stall on the partitions it hit, which the others' progress hides from `_stall`."""
    longest = 0.0
    for stamps in received.values():
        for a, b in itertools.pairwise(stamps):
            if b >= fault_at and a <= fault_at + window_s:
                longest = max(longest, b - a)
    return longest


async def _faults(engine: Engine, args: argparse.Namespace, began: float,
                  faults: list[tuple[str, float]]) -> None:
    """Each fault at its share of the load's duration."""
    load_s = args.runs / args.rate
    plan = [(0.15, "kill -9 orchestrator"), (0.35, "kill -9 executor"),
            (0.55, f"SIGSTOP executor {args.pause_s:.0f} s")]
    for share, what in plan:
        await asyncio.sleep(max(0.0, began + share * load_s - time.perf_counter()))
        role = "orchestrator" if "orchestrator" in what else "executor"
        victim = next(p for p in engine.workers.processes if p.role == role and p.alive())
        faults.append((what, time.perf_counter()))
        if what.startswith("kill"):
            victim.kill()
            engine.workers.start(role, wait=False)
        else:
            os.kill(victim.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(args.pause_s)
            finally:
                os.kill(victim.pid, signal.SIGCONT)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    upstream = Upstream(args.latency_ms / 1000)
    try:
        with running_engine(executors=2, orchestrators=2) as engine:
            defn = workflow(upstream.port)
            starts = [engine.start_run(defn, {}) for _ in range(args.runs)]
            ids = {s.run_id for s in starts}
            succeeded_at: list[float] = []
            done: dict[str, Any] = {}
            faults: list[tuple[str, float]] = []
            async with RunWatcher(engine.settings) as watcher, \
                    RecordProducer(engine.settings) as producer:

                async def watch() -> None:
                    async for ev in watcher.stream():
                        if isinstance(ev, StepSucceeded):
                            succeeded_at.append(time.perf_counter())
                        elif isinstance(ev, TERMINAL) and ev.run_id in ids:
                            done[ev.run_id] = ev
                            if len(done) == len(ids):
                                return

                watching = asyncio.ensure_future(watch())
                began = time.perf_counter()
                faulting = asyncio.ensure_future(_faults(engine, args, began, faults))
                for i, start in enumerate(starts):
                    await asyncio.sleep(max(0.0, began + i / args.rate - time.perf_counter()))
                    await producer.send_many([start])
                await faulting
                try:
                    await asyncio.wait_for(watching, args.timeout)
                except TimeoutError:
                    pass
                elapsed = time.perf_counter() - began
                await asyncio.sleep(3)  # late reports, late redeliveries
                events = dict(watcher.events)
                received = {r: list(t) for r, t in watcher.received_at.items() if r in ids}
    finally:
        upstream.stop()
    per_step = Counter()  # requests per (run, step), any attempt
    attempts: dict[tuple[str, str], set[str]] = {}
    for key, n in upstream.keys.items():
        run_id, step_id, attempt = key.rsplit(":", 2)
        if run_id in ids:
            per_step[(run_id, step_id)] += n
            attempts.setdefault((run_id, step_id), set()).add(attempt)
    succeeded_twice = sum(
        1 for run_id in ids
        for n in Counter(e.step_id for e in events.get(run_id, ())
                         if isinstance(e, StepSucceeded)).values() if n > 1)
    again_after: Counter[str] = Counter()
    for key, stamps in upstream.arrivals.items():
        if len(stamps) > 1 and key.split(":")[0] in ids:
            before = [what for what, at in faults if at <= stamps[1]]
            again_after[before[-1] if before else "no fault"] += 1
    same_key = sum(1 for k, n in upstream.keys.items() if n > 1 and k.split(":")[0] in ids)
    return {
        "runs": args.runs, "rate": args.rate, "latency_ms": args.latency_ms,
        "seconds": round(elapsed, 1),
        "finished": Counter(type(e).__name__ for e in done.values()),
        "unfinished": len(ids) - len(done),
        "steps_succeeded_twice": succeeded_twice,
        "steps_requested": len(per_step),
        "steps_run_more_than_once": sum(1 for n in per_step.values() if n > 1),
        "extra_requests": sum(n - 1 for n in per_step.values()),
        "keys_sent_more_than_once": same_key,
        "keys_sent_again_after": dict(again_after),
        "steps_with_more_than_one_attempt": sum(1 for a in attempts.values() if len(a) > 1),
        "completed_all": all(isinstance(e, RunCompleted) for e in done.values()),
        "stall_s": {what: round(_stall(succeeded_at, at, args.window_s), 2)
                    for what, at in faults},
        "run_stall_s": {what: round(_run_stall(received, at, args.window_s), 2)
                        for what, at in faults},
    }


def main() -> None:
    """Parse arguments, run the load under faults, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="runs started per second")
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--pause-s", type=float, default=30.0)
    parser.add_argument("--window-s", type=float, default=45.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2, default=dict))


if __name__ == "__main__":
    main()
