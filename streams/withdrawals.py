"""Attempts cancelled while out with this executor: the running one is stopped, a queued one
never begins (issue 17 item 3).

The orchestrator hands a cancelled step's `StepCancelled` (naming the attempt that was out) to
the tasks topic, on the partition its `StepScheduled` went to, so the executor holding that
partition reads it. A second agent on the tasks topic reads every record as it arrives, apart
from the steps the executor's busy actors are running, and tells this registry; the registry
cancels the attempt's asyncio task, which aborts its HTTP request or LLM call (the connection is
closed). The step is recorded cancelled by the `StepCancelled` already in the run log; the
stopped attempt reports nothing (the run would refuse it).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TypeVar

from bend.core.events import StepCancelled, StepScheduled

__all__ = ["StepWithdrawn", "Withdrawals"]

T = TypeVar("T")
_Attempt = tuple[str, str, int]  # run_id, step_id, attempt


class StepWithdrawn(Exception):
    """The attempt was cancelled while it ran; it was stopped and reports nothing."""


class Withdrawals:
    """The attempts this executor runs, and the cancelled attempts it has heard of (bounded)."""

    def __init__(self, remembered: int = 10_000) -> None:
        self.remembered = remembered
        self._cancelled: OrderedDict[_Attempt, None] = OrderedDict()
        self._running: dict[_Attempt, asyncio.Future[object]] = {}
        self._stopped: set[_Attempt] = set()

    @staticmethod
    def _key(ev: StepScheduled | StepCancelled) -> _Attempt:
        return ev.run_id or "", ev.step_id, ev.attempt

    def note(self, ev: StepCancelled) -> bool:
        """Remember that `ev`'s attempt was cancelled; stop it if it runs here (then True)."""
        key = self._key(ev)
        self._cancelled[key] = None
        self._cancelled.move_to_end(key)
        while len(self._cancelled) > self.remembered:
            self._cancelled.popitem(last=False)
        running = self._running.get(key)
        if running is None or running.done():
            return False
        self._stopped.add(key)
        running.cancel()
        return True

    def cancelled(self, task: StepScheduled) -> bool:
        """Whether the task's attempt was cancelled before it began here."""
        return self._key(task) in self._cancelled

    def running(self) -> int:
        """How many attempts run now."""
        return len(self._running)

    async def run(self, task: StepScheduled, work: Awaitable[T]) -> T:
        """`work`'s result; raises StepWithdrawn if the attempt is cancelled meanwhile."""
        key = self._key(task)
        future = asyncio.ensure_future(work)
        self._running[key] = future  # type: ignore[assignment]
        try:
            return await future
        except asyncio.CancelledError:
            if key in self._stopped and not _cancelling():
                raise StepWithdrawn(f"attempt {task.attempt} of step {task.step_id} was "
                                    "cancelled") from None
            raise  # the worker stops: not a withdrawal
        finally:
            self._running.pop(key, None)
            self._stopped.discard(key)


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not only the work it waited for)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
