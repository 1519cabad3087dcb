"""Kafka record headers as JSON, the way dead letters keep them for a re-drive."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

__all__ = ["headers_json"]


def headers_json(headers: Mapping[str, bytes | None] | Iterable[tuple[str, bytes | None]] | None
                 ) -> list[dict[str, str | None]] | None:
    """Kafka record headers as JSON: [{"key": name, "value": base64 or null}] (None: none)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [{"key": str(k), "value": None if v is None else base64.b64encode(v).decode()}
            for k, v in pairs]
