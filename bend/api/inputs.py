"""Run inputs checked against the workflow's `input_schema` before a run is asked for."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from jsonschema.validators import validator_for
from datetime import datetime

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from bend.api.problems import InvalidInput
from bend.core.depth import MAX_DEPTH, deeper_than

__all__ = ["IsoAwareTime", "IsoTime", "NUL_PROBLEM", "NulFree", "check_inputs", "nul_locations", "unstorable"]

NUL_PROBLEM = ("holds a NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff), "
               "which cannot be stored; remove it")


def unstorable(text: str) -> bool:
    """Whether Postgres refuses `text` (in text or JSONB): a NUL, or a lone UTF-16 surrogate,
    which is no Unicode character and has no UTF-8 form."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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


def nul_locations(value: Any, where: str = "") -> list[str]:
    """Where `value` holds a NUL character or a lone surrogate (in a string or a key): Postgres
    stores neither in text or JSONB, so a record holding one could never be projected. Walked
    iteratively: a value nested past the recursion limit is still checked, not crashed on."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if unstorable(item):
                found.append(at or "(value)")
        elif isinstance(item, dict):
            found += [f"{at}.{k!r}" for k in item if isinstance(k, str) and unstorable(k)]
            stack.extend((v, f"{at}.{k}") for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in reversed(list(enumerate(item))))
    return found


def check_inputs(workflow_id: str, definition: dict[str, Any], inputs: Sequence[Any],
                 where: Sequence[str]) -> None:
    """Raise InvalidInput listing every problem of every input (`where[i]` names input i)."""
    problems = [(label, f"nests objects and lists more than {MAX_DEPTH} levels deep")
                for label, value in zip(where, inputs) if deeper_than(value)]
    if problems:  # what follows walks the value recursively
        raise InvalidInput(workflow_id, problems)
    problems = [(loc, NUL_PROBLEM)
                for label, value in zip(where, inputs) for loc in nul_locations(value, label)]
    schema = definition.get("input_schema")
    if schema:
        validator = validator_for(schema)(schema)
        for label, value in zip(where, inputs):
            for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
                problems.append((f"{label}{path}", error.message))
    if problems:
        raise InvalidInput(workflow_id, problems)
