"""Server-sent events of an agent's model text as it streams: the agent-tokens side channel.

Not the run log: the records are best-effort batches of text (streams/executors/tokens.py),
kept an hour. A stream takes its run's records from the process's one consumer of the topic
(bend/api/token_feed.py), from when the request comes, and ends once the step (or, without
one, the run) has ended, or after `max_s`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog

from bend.api.context import ApiContext
from projections.queries import runs as queries

__all__ = ["ACTIVE_STEP", "follow_tokens"]

log = structlog.get_logger(__name__)

ACTIVE_STEP = frozenset({"scheduled", "running", "retrying"})  # may stream more text
_CHECK_S = 1.0  # how often the read model is asked whether the step has ended
_DRAIN_S = 0.3  # one last read once it has: its last batch went out before it ended
_KEEPALIVE_S = 15.0


def _frame(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def _ended(ctx: ApiContext, run_id: str, step_id: str | None) -> str | None:
    """Why there is no more text to wait for (the step's or run's status), else None."""
    status, _ = await queries.progress(ctx.pool, run_id) or ("pending", 0)
    if status in queries.FINISHED:
        return status
    if step_id is None:
        return None
    step = await queries.step(ctx.pool, run_id, step_id)
    if step is None or step["status"] in ACTIVE_STEP:
        return None
    return str(step["status"])


def _pieces(records: Any, step_id: str | None,
            redact: Callable[[str], str]) -> list[dict[str, Any]]:
    """The text pieces of one run's records (the feed hands a watch only its run's), of
    `step_id` if given."""
    out = []
    for record in records:
        try:
            piece = json.loads(record.value)
        except ValueError:
            continue
        if not isinstance(piece, dict) or (step_id is not None and piece.get("step_id") != step_id):
            continue
        shown = {k: piece.get(k) for k in ("step_id", "attempt", "call_index", "seq", "final")}
        out.append({**shown, "text": redact(str(piece.get("text") or ""))})
    return out


def _as_is(text: str) -> str:
    return text


async def follow_tokens(ctx: ApiContext, run_id: str, step_id: str | None, *, max_s: float,
                        redact: Callable[[str], str] = _as_is) -> AsyncIterator[str]:
    """`tokens` frames of the run's (or step's) streamed text from now on (each batch's text
    through `redact`), then an `end` frame once the step or run has ended, or a `timeout` frame
    after `max_s`."""
    async with ctx.tokens.watch(run_id) as watch:
        if watch is None:
            yield _frame("end", {"run_id": run_id, "status": None,
                                 "reason": f"the topic {ctx.tokens.topic} does not exist"})
            return
        deadline = time.monotonic() + max_s
        checked = last_beat = time.monotonic()
        while True:
            for piece in _pieces(await watch.next(0.25), step_id, redact):
                yield _frame("tokens", piece)
                last_beat = time.monotonic()
            now = time.monotonic()
            if now - checked >= _CHECK_S or now >= deadline:
                checked = now
                status = await _ended(ctx, run_id, step_id)
                if status is not None:
                    # Its last batch went out before it ended: one more short wait for it.
                    for piece in _pieces(await watch.next(_DRAIN_S), step_id, redact):
                        yield _frame("tokens", piece)
                    yield _frame("end", {"run_id": run_id, "step_id": step_id,
                                         "status": status})
                    return
                if now >= deadline:
                    yield _frame("timeout", {"run_id": run_id, "step_id": step_id})
                    return
            if now - last_beat >= _KEEPALIVE_S:
                last_beat = now
                yield ": keep-alive\n\n"
