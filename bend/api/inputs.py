"""Run inputs checked against the workflow's `input_schema` before a run is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from jsonschema.validators import validator_for
from pydantic import AfterValidator

from bend.api.problems import InvalidInput

__all__ = ["NUL_PROBLEM", "NulFree", "check_inputs", "nul_locations"]

NUL_PROBLEM = "holds a NUL character (\\u0000), which cannot be stored; remove it"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_PROBLEM)
    return value


# A body's text field that reaches Postgres (an id, a filter): one holding NUL is a 422.
NulFree = Annotated[str, AfterValidator(_no_nul)]


def nul_locations(value: Any, where: str = "") -> list[str]:
    """Where `value` holds a NUL character (in a string or a key): Postgres stores no NUL in
    text or JSONB, so a record holding one could never be projected."""
    if isinstance(value, str):
        return [where or "(value)"] if "\x00" in value else []
    if isinstance(value, dict):
        found = [f"{where}.{k!r}" for k in value if isinstance(k, str) and "\x00" in k]
        for key, item in value.items():
            found += nul_locations(item, f"{where}.{key}")
        return found
    if isinstance(value, list):
        return [loc for i, item in enumerate(value)
                for loc in nul_locations(item, f"{where}[{i}]")]
    return []


def check_inputs(workflow_id: str, definition: dict[str, Any], inputs: Sequence[Any],
                 where: Sequence[str]) -> None:
    """Raise InvalidInput listing every problem of every input (`where[i]` names input i)."""
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
