"""Dead letters: records no processor could handle, with why; inspect one, re-drive one or many.
Reads and re-drives go through the use cases of bend.services.dead_letters, as the API's do."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bend.api.paging import after_cursor
from bend.contracts.codec import decode
from bend.core.errors import BendError
from bend.deadletters import DeadLetterFilter
from bend.services import dead_letters as service
from bend.web.errors import BadForm
from bend.web.render import page, redactor_for
from bend.web.routes.common import Ui, UiRoute, context, form_of, need
from projections.payload import payload_of
from projections.queries.paging import encode_cursor

__all__ = ["readable", "router"]

router = APIRouter(prefix="/ui/dead-letters", route_class=UiRoute, include_in_schema=False)

PAGE = 50
MAX_SELECTED = 1000
_WAIT_S = 10.0


def readable(data: bytes | None) -> tuple[str, Any]:
    """Bytes as something to read: (`record`, the decoded record's fields), (`json`, the
    parsed JSON), (`text`, ...) or (`base64`, ...)."""
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


def _redriven_filter(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@router.get("")
async def dead_letters(request: Request, session: Ui, cursor: str | None = None,
                       error_type: str | None = None, source_topic: str | None = None,
                       redriven: str | None = None, done: int | None = None) -> Response:
    """Dead letters, newest first, with their reasons; filtered; paged by cursor."""
    need(session, "dead_letters:read")
    filters = {"error_type": (error_type or "").strip(), "source_topic": (source_topic or "")
               .strip(), "redriven": redriven if redriven in ("yes", "no") else ""}
    rows = await service.list_letters(
        context(request), session.principal,
        DeadLetterFilter(filters["source_topic"] or None, filters["error_type"] or None,
                         redriven=_redriven_filter(filters["redriven"])),
        limit=PAGE, before=after_cursor(cursor))
    shown = rows[:PAGE]
    kept = {k: v for k, v in filters.items() if v}
    nxt = None
    if len(rows) > PAGE and shown:
        last = shown[-1]
        nxt = "?" + urlencode({**kept, "cursor": encode_cursor(
            datetime.fromisoformat(last["occurred_at"]), last["event_id"])})
    return page(request, "dead_letters.html", {
        "rows": shown, "next_url": nxt, "filters": filters, "done": done,
        "can_redrive": session.can("dead_letters:redrive")})


@router.get("/{event_id}")
async def dead_letter(request: Request, session: Ui, event_id: str) -> Response:
    """One dead letter: where it came from, why, its key, headers and record (decoded if it
    can be), and when it was re-driven."""
    need(session, "dead_letters:read")
    dl = await service.get_letter(context(request), session.principal, event_id)
    if dl["payload"] is not None:
        kind, body = "record", dl["payload"]
    else:
        kind, body = readable(base64.b64decode(dl["payload_base64"]))
    redactor = await redactor_for(request, session.principal.project)
    return page(request, "dead_letter.html", {
        "dl": dl, "kind": dl["payload_type"] or kind, "body": redactor(body),
        "key": redactor(dl["key"]), "can_redrive": session.can("dead_letters:redrive")})


async def _settled(request: Request, positions: list[Any]) -> None:
    """Wait (bounded) until the read models show the re-drives, so the next page does."""
    if positions:
        await context(request).watcher.wait_for(positions, _WAIT_S)


@router.post("/redrive")
async def redrive_selected(request: Request, session: Ui) -> Response:
    """Re-drive the selected dead letters (those re-driven before only with force)."""
    form = await form_of(request, session, "dead_letters:redrive")
    ids = [str(v) for v in form.getlist("event_id")][:MAX_SELECTED]
    if not ids:
        raise BadForm("select at least one dead letter to re-drive")
    done = await service.redrive_letters(context(request), session.principal, event_ids=ids,
                                         force=form.get("force") == "on")
    await _settled(request, [d.redrive_position for d in done])
    return RedirectResponse(f"/ui/dead-letters?done={len(done)}", status_code=303)


@router.post("/{event_id}/redrive")
async def redrive_one(request: Request, session: Ui, event_id: str) -> Response:
    """Send one dead letter's record back to its source topic."""
    form = await form_of(request, session, "dead_letters:redrive")
    done = await service.redrive_letter(context(request), session.principal, event_id,
                                        force=form.get("force") == "on")
    await _settled(request, [done.redrive_position])
    back = form.get("back")
    target = "/ui/dead-letters?done=1" if back == "list" else f"/ui/dead-letters/{event_id}"
    return RedirectResponse(target, status_code=303)
