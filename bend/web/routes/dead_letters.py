"""Dead letters: records no processor could handle, with why; each shown whole."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request, Response

from bend.api.paging import after_cursor
from bend.contracts.codec import decode
from bend.core.errors import BendError
from bend.web.errors import NotFound
from bend.web.render import page, redactor_for
from bend.web.routes.common import Ui, UiRoute, context, need
from projections.payload import payload_of
from projections.queries.paging import encode_cursor

__all__ = ["router"]

router = APIRouter(prefix="/ui/dead-letters", route_class=UiRoute, include_in_schema=False)

PAGE = 50
_LIST = """SELECT event_id, source_topic, source_partition, source_offset, error_type, reason,
                  occurred_at, length(payload) AS size FROM dead_letters"""


def readable(data: bytes | None) -> tuple[str, Any]:
    """A dead letter's bytes as something to read: (`record`, the decoded record's fields),
    (`json`, the parsed JSON), (`text`, ...) or (`base64`, ...)."""
    if not data:
        return "empty", ""
    try:
        return "record", payload_of(decode(data))
    except (BendError, ValueError, TypeError, KeyError, IndexError, EOFError):
        pass
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "base64", base64.b64encode(data).decode()
    try:
        return "json", json.loads(text)
    except json.JSONDecodeError:
        return "text", text


@router.get("")
async def dead_letters(request: Request, session: Ui, cursor: str | None = None) -> Response:
    """Dead letters, newest first, with their reasons."""
    need(session, "dead_letters:read")
    ctx = context(request)
    after = after_cursor(cursor)
    if after is None:
        rows = await ctx.pool.fetch(f"{_LIST} ORDER BY occurred_at DESC, event_id DESC "
                                    "LIMIT $1", PAGE + 1)
    else:
        rows = await ctx.pool.fetch(f"{_LIST} WHERE (occurred_at, event_id) < ($1, $2) "
                                    "ORDER BY occurred_at DESC, event_id DESC LIMIT $3",
                                    after[0], after[1], PAGE + 1)
    shown = [dict(r) for r in rows[:PAGE]]
    nxt = encode_cursor(shown[-1]["occurred_at"], shown[-1]["event_id"]) \
        if len(rows) > PAGE else None
    return page(request, "dead_letters.html", {"rows": shown, "next_cursor": nxt,
                                               "can_redrive": False})


@router.get("/{event_id}")
async def dead_letter(request: Request, session: Ui, event_id: str) -> Response:
    """One dead letter: where it came from, why, its key and its record decoded if it can be."""
    need(session, "dead_letters:read")
    row = await context(request).pool.fetchrow("SELECT * FROM dead_letters WHERE event_id = $1",
                                               event_id)
    if row is None:
        raise NotFound(f"dead letter {event_id} not found; it may have been re-driven or "
                       "never recorded")
    kind, body = readable(row["payload"])
    key_kind, key = readable(row["key"])
    redactor = await redactor_for(request, session.principal.project)
    return page(request, "dead_letter.html", {
        "dl": dict(row), "kind": kind, "body": redactor(body), "key_kind": key_kind,
        "key": redactor(key), "can_redrive": False})
