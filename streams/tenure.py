"""Whether an executor still holds the partition of a task it ran: no report once fenced out
(issue 17 item 4).

Kafka takes a worker's partitions away when the group stops waiting for it, and the new owner
runs their unacked tasks again from the committed offset. Two ways it happens to an executor:
- its heartbeats stop for the session timeout (the process paused by SIGSTOP, a stalled loop);
  when it wakes, its steps end first (as timeouts, often: their clocks ran on) and its consumer
  learns that it was fenced out only a heartbeat later;
- a rebalance waits for its running steps (Faust revokes partitions only once every task is
  acked) longer than the rebalance timeout: the group goes on without it.
Its late report would be accepted while the new owner's attempt is still out; a stale failure
starts another attempt, which repeats the side effect under a new idempotency key.

A task is reported only while the consumer's group generation is the one it was received in:
aiokafka resets the generation when the coordinator no longer knows the member, and a new one
cannot begin while the task is unacked (the revocation waits for it). When the worker may not
have heard yet, it waits for the group's verdict before reporting: after a gap of half the
session timeout or more between the ticks of its loop, for one session timeout; while a
rebalance has waited for it about as long as the rebalance timeout, until the group's timer has
surely run out. A withheld task is acked (the revocation goes on); its new owner reports it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["Receipt", "Tenure", "group_generation"]

log = structlog.get_logger(__name__)


def group_generation(app: Any) -> int | None:
    """The generation aiokafka's coordinator holds for the app's consumer now (-1 once the group
    no longer knows the member); None before the consumer runs. Faust's own rebalance listener
    reads it from the same place."""
    try:
        return int(app.consumer._thread._ensure_consumer()._coordinator.generation)  # noqa: SLF001
    except Exception:  # not started yet, or stopping
        return None


@dataclass(frozen=True, slots=True)
class Receipt:
    """When a task was received, and in which group generation."""

    at: float
    generation: int | None


class Tenure:
    """Tells whether a task's outcome may still be reported by this worker."""

    def __init__(self, generation: Callable[[], int | None], *, session_timeout_s: float,
                 rebalance_timeout_s: float, heartbeat_s: float,
                 rebalancing: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic, tick_s: float = 0.1) -> None:
        self.generation = generation
        self.rebalancing = rebalancing
        self.session_timeout_s = session_timeout_s
        self.rebalance_timeout_s = rebalance_timeout_s
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.tick_s = tick_s
        self.watching = False
        self._last_tick = clock()
        self._gaps: list[tuple[float, float]] = []  # (began, ended) of long loop stalls
        self._rebalance_began: float | None = None

    def receipt(self) -> Receipt:
        """Note a task's arrival."""
        return Receipt(self.clock(), self.generation())

    async def watch(self) -> None:
        """Tick until cancelled: note long stalls of the loop and when a rebalance began."""
        self.watching = True
        self._last_tick = self.clock()
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                self.tick()
        finally:
            self.watching = False

    def tick(self) -> None:
        """One tick of `watch`."""
        now = self.clock()
        if now - self._last_tick >= self.session_timeout_s / 2:
            self._gaps.append((self._last_tick, now))
            self._gaps = [g for g in self._gaps if now - g[1] < 10 * self.session_timeout_s]
            log.warning("worker_stalled", seconds=round(now - self._last_tick, 1))
        self._last_tick = now
        if not self.rebalancing():
            self._rebalance_began = None
        elif self._rebalance_began is None:
            self._rebalance_began = now

    def fenced(self, receipt: Receipt) -> bool:
        """Whether the group has moved on from the generation the task was received in."""
        if receipt.generation is None:
            return False  # no consumer to ask (tests, a worker without Kafka)
        return receipt.generation < 0 or self.generation() != receipt.generation

    def _verdict_due(self, receipt: Receipt) -> float | None:
        """Until when to wait before trusting the generation, or None (trust it now)."""
        now = self.clock()
        due = None
        if self.watching and now - self._last_tick >= self.session_timeout_s / 2:
            due = now + self.session_timeout_s  # stalled now: the watch has not ticked yet
        ends = [ended for _began, ended in self._gaps if ended > receipt.at]
        if ends:
            due = max(due or 0.0, max(ends) + self.session_timeout_s)
        began = self._rebalance_began
        if began is not None and self.rebalancing() \
                and now - began >= self.rebalance_timeout_s - self.heartbeat_s:
            due = max(due or 0.0, began + self.rebalance_timeout_s + 2 * self.heartbeat_s)
        return due

    async def holds(self, receipt: Receipt) -> bool:
        """Whether the task received at `receipt` is still this worker's to report."""
        due = self._verdict_due(receipt)
        while True:
            if self.fenced(receipt):
                return False  # the new owner runs and reports it
            if due is None or self.clock() >= due:
                return True
            await asyncio.sleep(self.tick_s)
