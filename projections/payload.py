"""Records as JSON objects for JSONB columns: datetimes as ISO text, bytes as base64."""

from __future__ import annotations

import base64
from dataclasses import fields
from datetime import datetime
from typing import Any

from bend.core.events import Envelope

__all__ = ["jsonable", "payload_of"]


def jsonable(value: Any) -> Any:
    """`value` with datetimes and bytes turned into JSON-friendly strings."""
    match value:
        case datetime():
            return value.isoformat()
        case bytes():
            return base64.b64encode(value).decode()
        case dict():
            return {str(k): jsonable(v) for k, v in value.items()}
        case list() | tuple():
            return [jsonable(v) for v in value]
    return value


def payload_of(record: Envelope) -> dict[str, Any]:
    """Every field of `record` (envelope included) as a JSON object."""
    return {f.name: jsonable(getattr(record, f.name)) for f in fields(record)}
