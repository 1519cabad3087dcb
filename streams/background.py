"""Background tasks that are kept until they end: asyncio holds only weak references to tasks,
so a fire-and-forget `ensure_future` can be collected mid-flight; a failure is logged."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

__all__ = ["spawn"]

log = structlog.get_logger(__name__)

_RUNNING: set[asyncio.Future[Any]] = set()


def spawn(work: Coroutine[Any, Any, Any], *, what: str) -> asyncio.Future[Any]:
    """Run `work` in the background, referenced until it ends; `what` names it in the log."""
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)

    def done(finished: asyncio.Future[Any]) -> None:
        _RUNNING.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            log.error("background_task_failed", task=what, error=repr(finished.exception()))

    task.add_done_callback(done)
    return task
