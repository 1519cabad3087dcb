"""Running a process's main task beside its ops server, heartbeat and background measurements.

The projector, the archiver, the notifier and the chainer each run one long task (`run()`,
until cancelled); this starts their ops server with the role's readiness checks, beats the
heartbeat /livez reads, runs their lag loops beside them, and stops all of it when the task
ends, whichever way it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from bend.ops.health import Check, Heartbeat
from bend.ops.server import start_ops_server
from bend.settings import OpsSettings

__all__ = ["run_with_ops"]


async def run_with_ops(main: Callable[[], Awaitable[None]], ops: OpsSettings, role: str, *,
                       checks: Mapping[str, Check],
                       beside: tuple[Coroutine[Any, Any, None], ...] = ()) -> None:
    """Await `main()` with `role`'s ops server (readiness from `checks`), a heartbeat and the
    `beside` loops running, until it returns or is cancelled; then stop them all."""
    heartbeat = Heartbeat(ops.stall_after_s)
    server = start_ops_server(ops, role, checks=checks, heartbeat=heartbeat)
    helpers = [asyncio.ensure_future(heartbeat.run())] + [asyncio.ensure_future(c)
                                                          for c in beside]
    try:
        await main()
    finally:
        for task in helpers:
            task.cancel()
        for task in helpers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if server is not None:
            server.stop()
