"""What e2e tests wait with: a check polled until it answers, a service run as a task."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

__all__ = ["running", "until"]

T = TypeVar("T")


class Runs(Protocol):
    async def run(self) -> None: ...


S = TypeVar("S", bound=Runs)


async def until(check: Callable[[], Awaitable[T]], timeout_s: float = 30.0,
                every_s: float = 0.2) -> T:
    """`check()`'s first truthy answer; fails the test after `timeout_s` without one."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, f"never got there in {timeout_s:.0f} s"
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def running(service: S) -> AsyncIterator[S]:
    """`service.run()` as a task for the block, cancelled and awaited after it."""
    task: asyncio.Task[Any] = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
