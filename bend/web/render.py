"""Templates, their filters, and how values are shown: redacted, pretty, truncated."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from bend.security.dependencies import get_security
from bend.security.redact import MASK, Redactor
from bend.web.timeline import human_ms
import contextlib

__all__ = ["Shown", "duration", "masked", "page", "redactor_for", "show", "templates",
           "unmask"]

HERE = Path(__file__).parent
PREVIEW_CHARS = 280
WHOLE_CHARS = 1_000_000  # past this, even the expanded view is cut (the API has it all)
# Pages load only their own script and styles: an injected script or a framing page gets nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
SECRET_KEYS = frozenset({"authorization", "api_key", "apikey", "x-api-key", "password",
                         "passwd", "secret", "client_secret", "token", "access_token",
                         "refresh_token", "cookie", "set-cookie"})


def duration(ms: float | int | None) -> str:
    """`ms` for people: 850 ms, 1.2 s, 3 min 5 s."""
    return "" if ms is None else human_ms(ms)


def when(value: datetime | None) -> str:
    """A time as UTC text."""
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def iso(value: datetime | None) -> str:
    """A time as ISO 8601 (for `<time datetime>`)."""
    return value.astimezone(timezone.utc).isoformat() if value else ""


@dataclass(frozen=True, slots=True)
class Shown:
    """A value as a page shows it: a short preview, and the whole text when it was cut."""

    preview: str
    whole: str
    cut: bool
    size: int


def _mask_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and k.lower() in SECRET_KEYS and v not in
                    (None, "") else _mask_keys(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_keys(v) for v in value]
    return value


def masked(value: Any, redactor: Redactor | None = None) -> Any:
    """`value` with secret values and the values of secret-named keys masked."""
    value = _mask_keys(value)
    return redactor(value) if redactor is not None else value


def unmask(sent: Any, original: Any, redactor: Redactor | None = None) -> Any:
    """`sent` (an edited copy of `masked(original)`) with each part still as masked shown
    given back its real value, so only what was changed changes."""
    if sent == masked(original, redactor):
        return original
    if isinstance(sent, dict) and isinstance(original, dict):
        return {k: original[k] if k in original and sent[k] == MASK and isinstance(k, str)
                and k.lower() in SECRET_KEYS else
                unmask(v, original[k], redactor) if k in original else v
                for k, v in sent.items()}
    if isinstance(sent, list) and isinstance(original, list) and len(sent) == len(original):
        return [unmask(v, o, redactor) for v, o in zip(sent, original, strict=False)]
    return sent


def show(value: Any, redactor: Redactor | None = None, preview: int = PREVIEW_CHARS) -> Shown:
    """`value` as pretty JSON with secrets masked, previewed in `preview` characters."""
    value = masked(value, redactor)
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str,
                                                             ensure_ascii=False)
    size = len(text)
    whole = text if size <= WHOLE_CHARS else text[:WHOLE_CHARS] + "\n… (cut; read it whole " \
                                                                  "from the API)"
    if size <= preview:
        return Shown(text, whole, False, size)
    flat = " ".join(text.split())
    return Shown(flat[:preview] + "…", whole, True, size)


async def redactor_for(request: Request, project: str) -> Redactor:
    """Masks the project's stored secrets and the executors' `BEND_SECRET_*` values."""
    values = set(filter(None, (v for k, v in os.environ.items() if k.startswith("BEND_SECRET_"))))
    with contextlib.suppress(Exception):
        values |= set((await get_security(request).secrets.values(project)).values())
    return Redactor(sorted(values))


def _status_word(status: str | None) -> str:
    return (status or "").replace("_", " ")


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(duration=duration, when=when, iso=iso, status_word=_status_word)
templates.env.globals.update(show=show)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def page(request: Request, name: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    """The rendered template `name` (its context has the request's session, if any)."""
    ctx = {"session": getattr(request.state, "ui_session", None), **context}
    response = templates.TemplateResponse(request, name, ctx, status_code=status,
                                          headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.update(SECURITY_HEADERS)
    return response
