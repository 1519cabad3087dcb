"""Cursor paging for list endpoints: fetch one row more than the page to know if there is a next."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bend.api.problems import InvalidCursor
from projections.queries.paging import BadCursor, decode_cursor, encode_cursor

__all__ = ["after_cursor", "next_cursor"]


def after_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The sort key a `?cursor=` holds (None for the first page); InvalidCursor if bad."""
    if not cursor:
        return None
    try:
        return decode_cursor(cursor)
    except BadCursor:
        raise InvalidCursor(cursor) from None


def next_cursor(rows: list[dict[str, Any]], limit: int, at: str, key: str) -> str | None:
    """The cursor of the page after `rows[:limit]`, if `rows` (limit + 1 asked) has more."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last[at], last[key])
