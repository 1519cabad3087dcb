"""Whether an executor still holds the partition of a task it ran: no report once fenced out
(issue 17 item 4).

Kafka takes a worker's partitions away once its heartbeats stop for the session timeout (the
process paused by SIGSTOP, a stalled loop), and the new owner runs their unacked tasks again from
the committed offset. When the paused worker wakes up, its steps end first (as timeouts, often:
their clocks ran on) and its consumer learns that it was fenced out only a heartbeat later, so
it would report outcomes of tasks that are now another worker's. While that worker's attempt is
still out, the run would accept the stale report: a stale failure starts another attempt,
which repeats the side effect under a new idempotency key.

A Tenure watches the event loop. After a gap between its ticks of half the session timeout or
more, a task received before the gap is reported only once the group's verdict is in: a
rebalance begins (the consumer rejoins because its membership was lost; Faust counts it in
`App.rebalancing_count` before anything else) and the outcome is withheld, the new owner reports
it; or none begins for a whole session timeout (heartbeats were accepted, the partitions stayed
here) and it is reported. Faust waits for every running task's ack before a revocation goes on,
so a withheld task is acked and the rebalance proceeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

__all__ = ["Receipt", "Tenure"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Receipt:
    """When a task was received, and how many rebalances had begun by then."""

    at: float
    rebalances: int


class Tenure:
    """Tells whether a task's outcome may still be reported by this worker."""

    def __init__(self, rebalances: Callable[[], int], session_timeout_s: float, *,
                 clock: Callable[[], float] = time.monotonic, tick_s: float = 0.1) -> None:
        self.rebalances = rebalances
        self.suspect_after_s = session_timeout_s / 2
        self.verdict_after_s = session_timeout_s
        self.clock = clock
        self.tick_s = tick_s
        self.watching = False
        self._last_tick = clock()
        self._gaps: list[tuple[float, float]] = []  # (began, ended) of long loop stalls

    def receipt(self) -> Receipt:
        """Note a task's arrival."""
        return Receipt(self.clock(), self.rebalances())

    async def watch(self) -> None:
        """Tick until cancelled, keeping the stalls as long as `suspect_after_s` or longer."""
        self.watching = True
        self._last_tick = self.clock()
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                self._tick()
        finally:
            self.watching = False

    def _tick(self) -> None:
        now = self.clock()
        if now - self._last_tick >= self.suspect_after_s:
            self._gaps.append((self._last_tick, now))
            self._gaps = [g for g in self._gaps if now - g[1] < 10 * self.verdict_after_s]
            log.warning("worker_stalled", seconds=round(now - self._last_tick, 1))
        self._last_tick = now

    def _stall_after(self, since: float) -> float | None:
        """When the last stall that ended after `since` ended (now: one not ticked yet)."""
        now = self.clock()
        if self.watching and now - self._last_tick >= self.suspect_after_s:
            return now
        ends = [ended for _began, ended in self._gaps if ended > since]
        return max(ends) if ends else None

    async def holds(self, receipt: Receipt) -> bool:
        """Whether the task received at `receipt` is still this worker's to report."""
        stall_end = self._stall_after(receipt.at)
        if stall_end is None:
            return True
        deadline = stall_end + self.verdict_after_s
        while True:
            if self.rebalances() != receipt.rebalances:
                return False  # the group moved the partitions: the new owner reports
            if self.clock() >= deadline:
                return True  # a whole session of accepted heartbeats: still ours
            await asyncio.sleep(self.tick_s)
