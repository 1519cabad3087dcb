"""Request fields the API reads: text Postgres can store, times as ISO 8601 text (the checks of a
run's input are bend.services.inputs', named here too)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from bend.services.inputs import NUL_PROBLEM, check_inputs, nul_locations, unstorable

__all__ = [
    "IsoAwareTime", "IsoTime", "NUL_PROBLEM", "NulFree", "check_inputs", "nul_locations",
    "unstorable",
]


def _no_nul(value: str) -> str:
    if unstorable(value):
        raise ValueError(NUL_PROBLEM)
    return value


# A body's text field that reaches Postgres (an id, a filter): one Postgres cannot store is a 422.
NulFree = Annotated[str, AfterValidator(_no_nul)]


_NUMBER = re.compile(r"\s*[-+]?[0-9]+(\.[0-9]*)?\s*")


def _time_text(value: Any) -> Any:
    """A time must be ISO 8601 text: pydantic also reads numbers (and numeric text) as Unix
    seconds, so `0` or `0.5` would quietly mean 1970."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("give a time as ISO 8601 text, e.g. 2027-01-31T12:00:00Z, not a number")
    return value


# A time in a body or query: ISO 8601 text only (IsoAwareTime: with its offset).
IsoTime = Annotated[datetime, BeforeValidator(_time_text)]
IsoAwareTime = Annotated[AwareDatetime, BeforeValidator(_time_text)]
