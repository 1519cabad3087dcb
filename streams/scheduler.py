"""Durable timers: pending timers live in the run log; this queue fires them as commands.

Timers are armed from `TimerSet` events as the orchestrator decides them and re-armed from
the folded run states when a partition is rebuilt, so a restart loses none. Firing sends a
`FireTimer` command; the orchestrator rejects one for a timer already fired or cancelled.
"""

from __future__ import annotations

import asyncio
import heapq
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import structlog

from bend.core.commands import FireTimer

__all__ = ["TimerQueue"]

log = structlog.get_logger(__name__)

Send = Callable[[FireTimer, int], Awaitable[None]]


class TimerQueue:
    """A heap of due times; `run()` sends each timer's FireTimer when it comes due."""

    def __init__(self, send: Send, clock: Callable[[], datetime] | None = None) -> None:
        self._send = send
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._heap: list[tuple[datetime, str, str, str, int, int]] = []
        self._armed: set[str] = set()
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._armed)

    def arm(self, *, run_id: str, workflow_id: str, workflow_version: int, timer_id: str,
            fire_at: datetime, partition: int) -> None:
        """Fire `timer_id` of `run_id` at `fire_at` (once, however often it is armed)."""
        if timer_id in self._armed:
            return
        self._armed.add(timer_id)
        heapq.heappush(self._heap, (fire_at, timer_id, run_id, workflow_id,
                                    workflow_version, partition))
        if self._heap[0][1] == timer_id:
            self._wake.set()

    def disarm_partitions(self, partitions: set[int]) -> None:
        """Forget the timers of revoked partitions; their new owner re-arms them."""
        keep = [entry for entry in self._heap if entry[5] not in partitions]
        self._armed = {entry[1] for entry in keep}
        self._heap = keep
        heapq.heapify(self._heap)

    async def run(self) -> None:
        """Send each timer's FireTimer as it comes due, forever."""
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                fire_at, timer_id, run_id, wf_id, wf_version, partition = heapq.heappop(self._heap)
                self._armed.discard(timer_id)
                cmd = FireTimer(
                    event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"fire:{timer_id}")),
                    run_id=run_id, workflow_id=wf_id, workflow_version=wf_version,
                    occurred_at=now, correlation_id=run_id, timer_id=timer_id,
                )
                try:
                    await self._send(cmd, partition)
                except Exception:  # Kafka hiccup: try again shortly rather than lose it
                    log.exception("timer_fire_failed", run_id=run_id, timer_id=timer_id)
                    self.arm(run_id=run_id, workflow_id=wf_id, workflow_version=wf_version,
                             timer_id=timer_id, fire_at=now, partition=partition)
                    await asyncio.sleep(0.5)
                    break
                log.debug("timer_fired", run_id=run_id, timer_id=timer_id)
            self._wake.clear()
            delay = 3600.0
            if self._heap:
                delay = max(0.0, (self._heap[0][0] - self._clock()).total_seconds())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
