"""Records as JSON objects for JSONB columns: datetimes as ISO text, bytes as base64."""

from __future__ import annotations

import base64
from dataclasses import fields
from datetime import datetime
from functools import cache
from typing import Any

from bend.core.events import Envelope

__all__ = ["payload_of"]


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def payload_of(record: Envelope) -> dict[str, Any]:
    """Every field of `record` (envelope included) as a JSON object.

    JSON-valued fields already hold JSON values; only typed fields can be datetimes or bytes.
    """
    out = {}
    kind: type = type(record)  # a plain `type`: mypy wrongly finds type[Envelope] unhashable
    for name in _names(kind):
        value = getattr(record, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        out[name] = value
    return out
