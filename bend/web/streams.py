"""Server-sent events for live pages, woken like the API's event stream (`bend.api.follow`):
by the projector's NOTIFY through the API's watcher, re-checking at least once a second."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bend.api.context import ApiContext
from projections.queries import live
from projections.queries import runs as queries

__all__ = ["run_state", "run_statuses"]

MAX_S = 300.0  # a stream ends then; EventSource reconnects by itself
_KEEPALIVE_S = 15.0
_RETRY_MS = 2000


def _frame(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def run_statuses(ctx: ApiContext, project: str, run_ids: list[str], *,
                       newer: Callable[[], Awaitable[int]] | None = None,
                       max_s: float = MAX_S) -> AsyncIterator[str]:
    """A `status` frame per listed run whenever its status (or last seq) changes; with
    `newer` (how many runs are newer than the list's first), a `new` frame when that changes.
    Ends once every listed run has finished, unless it watches for newer runs."""
    yield f"retry: {_RETRY_MS}\n\n"
    seen: dict[str, tuple[str, int]] = {}
    fresh = 0
    deadline = time.monotonic() + max_s
    last_beat = time.monotonic()
    while True:
        rows = await live.statuses(ctx.pool, project, run_ids)
        for row in rows:
            mark = (row["status"], row["last_seq"])
            if seen.get(row["run_id"]) != mark:
                seen[row["run_id"]] = mark
                yield _frame("status", dict(row))
                last_beat = time.monotonic()
        if newer is not None:
            count = await newer()
            if count != fresh:
                fresh = count
                yield _frame("new", {"count": count})
                last_beat = time.monotonic()
        elif all(s in queries.FINISHED for s, _ in seen.values()) and len(seen) == len(run_ids):
            yield _frame("end", {"runs": len(seen)})
            return
        now = time.monotonic()
        if now >= deadline:
            yield _frame("timeout", {})
            return
        if now - last_beat >= _KEEPALIVE_S:
            last_beat = now
            yield ": keep-alive\n\n"
        await ctx.watcher.changed(min(1.0, deadline - now))


async def run_state(ctx: ApiContext, run_id: str, after_seq: int,
                    render: Callable[[int], Awaitable[dict[str, Any]]], *,
                    shown_status: str | None = None,
                    max_s: float = MAX_S) -> AsyncIterator[str]:
    """A `state` frame (what `render(after_seq)` builds) whenever the run gets events or
    changes status; `end` once it has finished and every event was sent. A page that shows
    `shown_status` and events up to `after_seq` gets no first frame unless that changed."""
    yield f"retry: {_RETRY_MS}\n\n"
    deadline = time.monotonic() + max_s
    last_beat = time.monotonic()
    mark: tuple[str, int] | None = (shown_status, after_seq) if shown_status else None
    while True:
        progress = await queries.progress(ctx.pool, run_id)
        if progress is None:
            yield _frame("end", {"run_id": run_id, "status": None})
            return
        status, last_seq = progress
        if (status, last_seq) != mark:
            mark = (status, last_seq)
            state = await render(after_seq)
            after_seq = max(after_seq, int(state.get("last_seq", after_seq)))
            yield _frame("state", state, after_seq)
            last_beat = time.monotonic()
        if status in queries.FINISHED and after_seq >= last_seq:
            yield _frame("end", {"run_id": run_id, "status": status}, after_seq)
            return
        now = time.monotonic()
        if now >= deadline:
            yield _frame("timeout", {"run_id": run_id}, after_seq)
            return
        if now - last_beat >= _KEEPALIVE_S:
            last_beat = now
            yield ": keep-alive\n\n"
        await ctx.watcher.changed(min(1.0, deadline - now))
