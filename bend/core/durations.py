"""Durations as workflows write them: "500ms", "5s", "2m", "1h30m", "1d", "PT5S", or seconds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["parse_duration", "duration_ms", "parse_timestamp"]

_SHORT = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SHORT_ALL = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONGEST = timedelta(days=3660)  # ten years: longer is a typo, and overflows datetimes sooner


def _bounded(value: object, duration: timedelta) -> timedelta:
    if duration > _LONGEST:
        raise ValueError(f"duration {value!r} is longer than ten years")
    return duration


def parse_duration(value: str | int | float) -> timedelta:
    """The duration `value` names; ValueError (saying which forms work) if it names none."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration {value!r} is negative")
        return _bounded(value, timedelta(seconds=min(value, 10**12)))
    text = value.strip()
    if _SHORT_ALL.match(text):
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _SHORT.findall(text))
        return _bounded(value, timedelta(seconds=min(seconds, 10**12)))
    iso = _ISO.match(text.upper())
    if iso and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        parts = {k: min(float(v), 10**6) for k, v in iso.groupdict().items() if v}
        return _bounded(value, timedelta(
            weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
            minutes=parts.get("m", 0), seconds=parts.get("s", 0)))
    raise ValueError(f"{value!r} is not a duration; write e.g. \"500ms\", \"5s\", \"2m\", "
                     "\"1h30m\", \"1d\" or ISO-8601 \"PT5S\"")


def duration_ms(value: str | int | float) -> int:
    """The duration `value` names, in whole milliseconds."""
    return int(parse_duration(value) / timedelta(milliseconds=1))


def parse_timestamp(value: object) -> datetime:
    """An ISO-8601 timestamp (UTC if it names no zone) or epoch seconds, as an aware datetime."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 timestamp "
                             "(e.g. \"2025-01-31T09:00:00Z\")") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ValueError(f"{value!r} is not a timestamp; give an ISO-8601 string or epoch seconds")
