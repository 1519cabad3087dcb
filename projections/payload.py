"""Records as JSON objects for JSONB columns: datetimes as ISO text, bytes as base64.

`payload_json` spells them with orjson (a record's dataclass fields straight to JSON text, about
four times faster than building a dict and encoding it, measured on the projector's path); a
record it cannot spell (an integer past 64 bits in a JSON field) takes `payload_of` and the
standard encoder."""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from datetime import datetime
from functools import cache
from typing import Any

import orjson

from bend.core.events import Envelope

__all__ = ["payload_json", "payload_of"]


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


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _typed(value: Any) -> str:
    """What orjson hands back: bytes as base64, datetimes as `isoformat` spells them (orjson's
    own spelling drops an offset's seconds)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def payload_json(record: Envelope) -> str:
    """`payload_of(record)` as compact JSON text."""
    try:
        return orjson.dumps(record, default=_typed,
                            option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
    except TypeError:  # orjson.JSONEncodeError: past 64 bits, a key that is not text, ...
        return _ENCODE(payload_of(record))
