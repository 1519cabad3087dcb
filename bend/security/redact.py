"""Masking secret values in text and JSON before they reach events, logs or API responses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MASK", "Redactor", "redact", "redaction_processor"]

MASK = "***"


def _forms(secret: str) -> set[str]:
    """The ways `secret` appears in text: as is, and escaped inside a JSON string."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


class Redactor:
    """Replaces every occurrence of the given secret values with `***`, in any JSON shape."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for s in secrets if s for form in _forms(s)}
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._forms = tuple(ordered)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        """Whether there is anything to mask."""
        return self._pattern is not None

    def safe_cut(self, text: str) -> int:
        """How much of `text` (a stream's next piece) can be masked and sent now: all of it
        unless it ends with the start of a secret, which stays back to meet the rest."""
        cut = len(text)
        moved = True
        while moved and cut:
            moved = False
            for form in self._forms:
                for k in range(min(len(form) - 1, cut), 0, -1):
                    if text[cut - k:cut] == form[:k]:
                        cut, moved = cut - k, True
                        break
                if moved:
                    break
        return cut

    def text(self, text: str) -> str:
        """`text` with every secret masked."""
        return self._pattern.sub(MASK, text) if self._pattern else text

    def __call__(self, value: Any) -> Any:
        """`value` (str, bytes, number, dict, list, tuple) with every secret masked, same shape."""
        if self._pattern is None:
            return value
        match value:
            case str():
                return self.text(value)
            case bool() | None:
                return value
            case int() | float():
                masked = self.text(str(value))
                return value if masked == str(value) else masked
            case bytes():
                try:
                    return self.text(value.decode()).encode()
                except UnicodeDecodeError:
                    return value  # binary payloads are not text a secret was put into
            case dict():
                return {self(k): self(v) for k, v in value.items()}
            case list():
                return [self(v) for v in value]
            case tuple():
                return tuple(self(v) for v in value)
            case _:
                return value


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with each of `secrets` replaced by `***` (text, JSON values, nested)."""
    return Redactor(secrets)(value)


def redaction_processor(
    secrets: Callable[[], Iterable[str]],
) -> Callable[[object, str, dict[str, Any]], dict[str, Any]]:
    """A structlog processor masking the values `secrets()` returns in every log field."""

    cache: dict[frozenset[str], Redactor] = {}

    def _process(_logger: object, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        current = frozenset(secrets())
        redactor = cache.get(current)
        if redactor is None:  # secrets changed: compile once, not on every log line
            cache.clear()
            redactor = cache[current] = Redactor(current)
        return {key: redactor(value) for key, value in event_dict.items()}

    return _process
