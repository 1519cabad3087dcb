"""Keyset paging: an opaque cursor holding the last row's sort key (a time and an id)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

__all__ = ["BadCursor", "decode_cursor", "encode_cursor"]


class BadCursor(ValueError):
    """A cursor that does not decode."""


def encode_cursor(at: datetime, key: str) -> str:
    """The cursor after the row sorted at (`at`, `key`)."""
    raw = json.dumps([at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (`at`, `key`) a cursor holds; BadCursor if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key = json.loads(raw)
        return datetime.fromisoformat(at), str(key)
    except (binascii.Error, ValueError, TypeError) as err:
        raise BadCursor(cursor) from err
