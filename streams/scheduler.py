"""Durable timers: pending timers live in the run log; this queue fires them as commands.

Timers are armed from `TimerSet` events as the orchestrator decides them and re-armed from
the folded run states when a partition is rebuilt, so a restart loses none. Firing sends a
`FireTimer` command; the orchestrator rejects one for a timer already fired or cancelled.
"""

from __future__ import annotations

import asyncio
import heapq
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone

import structlog

from bend.core.commands import FireTimer
import contextlib

__all__ = ["TimerQueue"]

log = structlog.get_logger(__name__)

Send = Callable[[FireTimer, int], Awaitable[None]]


_ENDED_KEPT = 50_000  # ended timers and runs remembered (well past any write in flight)


class TimerQueue:
    """A heap of due times; `run()` sends each timer's FireTimer when it comes due."""

    def __init__(self, send: Send, clock: Callable[[], datetime] | None = None) -> None:
        self._send = send
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._heap: list[tuple[datetime, str, str, str, int, int]] = []
        # timer_id -> when it fires; a heap entry whose timer is no longer here (disarmed, or
        # fired) is dropped when it comes up, instead of being searched for in the heap.
        self._armed: dict[str, datetime] = {}
        self._by_run: dict[str, set[str]] = {}
        # What ended recently: a timer armed after its work ended (decisions are written, and
        # their timers armed, after later decisions were made) is not armed at all.
        self._ended: dict[str, None] = {}
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._armed)

    def arm(self, *, run_id: str, workflow_id: str, workflow_version: int, timer_id: str,
            fire_at: datetime, partition: int) -> None:
        """Fire `timer_id` of `run_id` at `fire_at` (once, however often it is armed)."""
        if timer_id in self._armed or timer_id in self._ended or run_id in self._ended:
            return
        self._armed[timer_id] = fire_at
        self._by_run.setdefault(run_id, set()).add(timer_id)
        heapq.heappush(self._heap, (fire_at, timer_id, run_id, workflow_id,
                                    workflow_version, partition))
        if self._heap[0][1] == timer_id:
            self._wake.set()

    def disarm(self, run_id: str, timer_ids: Iterable[str] = (), *, prefix: str | None = None,
               whole_run: bool = False) -> int:
        """Forget timers of `run_id` whose work ended: the given ids, those starting with
        `prefix`, or (`whole_run`) all of them; how many were armed."""
        for ended in (run_id,) if whole_run else timer_ids:
            self._ended[ended] = None
        while len(self._ended) > _ENDED_KEPT:
            del self._ended[next(iter(self._ended))]
        mine = self._by_run.get(run_id)
        if not mine:
            return 0
        gone = set(mine) if whole_run else (set(timer_ids) & mine) | (
            {t for t in mine if t.startswith(prefix)} if prefix else set())
        for timer_id in gone:
            self._armed.pop(timer_id, None)
        mine -= gone
        if not mine:
            del self._by_run[run_id]
        return len(gone)

    def disarm_partitions(self, partitions: set[int]) -> None:
        """Forget the timers of revoked partitions; their new owner re-arms them."""
        keep = [entry for entry in self._heap
                if entry[5] not in partitions and self._armed.get(entry[1]) == entry[0]]
        self._armed = {entry[1]: entry[0] for entry in keep}
        self._by_run = {}
        for entry in keep:
            self._by_run.setdefault(entry[2], set()).add(entry[1])
        self._heap = keep
        heapq.heapify(self._heap)

    async def run(self) -> None:
        """Send each timer's FireTimer as it comes due, forever."""
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                fire_at, timer_id, run_id, wf_id, wf_version, partition = heapq.heappop(self._heap)
                if self._armed.get(timer_id) != fire_at:
                    continue  # disarmed: what it guarded ended
                self._armed.pop(timer_id, None)
                if (mine := self._by_run.get(run_id)) is not None:
                    mine.discard(timer_id)
                    if not mine:
                        del self._by_run[run_id]
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
