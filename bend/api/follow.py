"""Server-sent events that follow a run's log as the read models apply it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import BaseModel

from bend.api.context import ApiContext
from projections.queries import runs as queries

__all__ = ["MAX_SEQ", "SSE_MEDIA_TYPE", "follow_run", "resume_after"]

SSE_MEDIA_TYPE = "text/event-stream"
MAX_SEQ = 2**63 - 1  # seq is a Postgres bigint
_SEQ = re.compile(r"[0-9]{1,19}")
_KEEPALIVE_S = 15.0


def resume_after(after_seq: int, last_event_id: str | None) -> int:
    """Where a stream resumes: after `after_seq`, or after the SSE client's last event id (a
    seq: ASCII digits; anything else, "²" or 5,000 digits, is ignored as no id)."""
    if last_event_id and _SEQ.fullmatch(last_event_id.strip()):
        return max(after_seq, min(int(last_event_id.strip()), MAX_SEQ))
    return after_seq


def _frame(seq: int, event: str, data: str) -> str:
    return f"id: {seq}\nevent: {event}\ndata: {data}\n\n"


async def follow_run(ctx: ApiContext, run_id: str, after_seq: int,
                     render: Callable[[dict[str, Any]], BaseModel], *,
                     max_s: float) -> AsyncIterator[str]:
    """Frames of the run's events after `after_seq` (each rendered), until the run finishes
    and its log is drained, or `max_s` passes; then an `end` frame."""
    deadline = time.monotonic() + max_s
    last_beat = time.monotonic()
    while True:
        rows = await queries.events(ctx.pool, run_id, after_seq=after_seq, limit=500)
        for row in rows:
            after_seq = row["seq"]
            yield _frame(after_seq, row["event_type"], render(row).model_dump_json())
        if rows:
            last_beat = time.monotonic()
            continue
        status, last_seq = await queries.progress(ctx.pool, run_id) or (None, 0)
        if status in queries.FINISHED and after_seq >= last_seq:
            yield _frame(after_seq, "end", json.dumps({"run_id": run_id, "status": status}))
            return
        now = time.monotonic()
        if now >= deadline:
            yield _frame(after_seq, "timeout", json.dumps({"run_id": run_id, "status": status}))
            return
        if now - last_beat >= _KEEPALIVE_S:
            last_beat = now
            yield ": keep-alive\n\n"
        await ctx.watcher.changed(min(1.0, deadline - now))
