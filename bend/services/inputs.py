"""Run inputs checked before a run is asked for: storable by Postgres, not nested too deep, and
matching the workflow's `input_schema` (every problem of every input listed at once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jsonschema.validators import validator_for

from bend.core.depth import MAX_DEPTH, deeper_than
from bend.services.errors import InvalidInput

__all__ = ["NUL_PROBLEM", "check_inputs", "nul_locations", "unstorable"]

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
                for label, value in zip(where, inputs, strict=False) if deeper_than(value)]
    if problems:  # what follows walks the value recursively
        raise InvalidInput(workflow_id, problems)
    problems = [(loc, NUL_PROBLEM)
                for label, value in zip(where, inputs, strict=False)
                for loc in nul_locations(value, label)]
    schema = definition.get("input_schema")
    if schema:
        validator = validator_for(schema)(schema)
        for label, value in zip(where, inputs, strict=False):
            for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
                problems.append((f"{label}{path}", error.message))
    if problems:
        raise InvalidInput(workflow_id, problems)
