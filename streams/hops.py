"""Where a worker's records spend their time, phase by phase (off unless asked for).

`BEND_WORKERS__HOP_PROFILE_S=N` makes the orchestrator and executor time each record's
phases and log `hop_profile` (p50/p99 ms per phase) every N seconds:

- `kafka`: the producer's CreateTime of the record to the moment Faust's consumer thread
  fetched it (produce round trip plus fetch; the timestamp has 1 ms resolution),
- `faust_handoff`: fetched to the agent holding it (thread handoff, conductor, stream),
- `decode`, `decide` (run state lookup, and decide inside its interceptors: metrics and
  trace, bend.ops.interceptors), `encode`, `execute` (executor),
- `queued`: a decision waiting for its partition's write in flight (group commit),
- `produce`: a batch (or a task's reports) sent to delivered (acks=all round trip),
- `handled`: the agent's whole time on the record before it takes the next one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import structlog

__all__ = ["HopProfile", "PROFILE"]

log = structlog.get_logger(__name__)

_MAX_SAMPLES = 200_000  # per phase and period: bounded memory under any load


class HopProfile:
    """Durations per phase in milliseconds, summarised and cleared by `report`."""

    def __init__(self) -> None:
        self.enabled = False
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.fetched_at: dict[tuple[str, int, int], float] = {}

    def add(self, phase: str, ms: float) -> None:
        """Keep one duration (no-op while the profile is off)."""
        if self.enabled:
            samples = self.samples[phase]
            if len(samples) < _MAX_SAMPLES:
                samples.append(ms)

    def since(self, phase: str, started: float) -> float:
        """Keep the time since `started` (a perf_counter reading); returns now."""
        now = time.perf_counter()
        if self.enabled:
            self.add(phase, (now - started) * 1000)
        return now

    def received(self, message: Any) -> None:
        """A record reached the agent: time its way there from the producer."""
        if not self.enabled:
            return
        now = time.time()
        fetched = self.fetched_at.pop((message.topic, message.partition, message.offset), None)
        if fetched is not None:
            self.add("faust_handoff", (now - fetched) * 1000)
            if message.timestamp:
                self.add("kafka", (fetched - message.timestamp) * 1000)

    def summary(self) -> dict[str, dict[str, float]]:
        """p50/p99/count of each phase since the last report."""
        out = {}
        for phase, values in sorted(self.samples.items()):
            if values:
                ordered = sorted(values)
                out[phase] = {"p50": round(ordered[len(ordered) // 2], 3),
                              "p99": round(ordered[min(len(ordered) - 1,
                                                       int(0.99 * len(ordered)))], 3),
                              "n": len(ordered)}
        return out

    def report(self, role: str) -> None:
        """Log the summary and start a new period."""
        summary = self.summary()
        self.samples.clear()
        if len(self.fetched_at) > _MAX_SAMPLES:  # records of other topics never popped
            self.fetched_at.clear()
        if summary:
            log.info("hop_profile", role=role, phases=summary)

    def enable(self, app: Any, role: str, every_s: float) -> None:
        """Time fetches in Faust's consumer thread and log the summary every `every_s`."""
        from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

        self.enabled = True
        fetch = AIOKafkaConsumerThread._fetch_records  # noqa: SLF001 - the fetch itself
        fetched_at = self.fetched_at

        async def timed_fetch(thread: Any, *args: Any, **kwargs: Any) -> Any:
            records = await fetch(thread, *args, **kwargs)
            now = time.time()
            for tp, batch in records.items():
                for record in batch:
                    fetched_at[(tp.topic, tp.partition, record.offset)] = now
            return records

        # Faust has no hook around a fetch: the profile (off unless asked for) wraps its own
        # (with a pass-through signature, not the private method's).
        AIOKafkaConsumerThread._fetch_records = timed_fetch  # type: ignore[method-assign,assignment]  # noqa: SLF001

        # faust's App.timer returns a bare Callable (its decorator is untyped).
        @app.timer(every_s, name="hop-profile")  # type: ignore[untyped-decorator]
        async def _report() -> None:
            self.report(role)


PROFILE = HopProfile()  # one per worker process (a worker runs one role)
