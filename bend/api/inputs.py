"""Run inputs checked against the workflow's `input_schema` before a run is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jsonschema.validators import validator_for

from bend.api.problems import InvalidInput

__all__ = ["check_inputs"]


def check_inputs(workflow_id: str, definition: dict[str, Any], inputs: Sequence[Any],
                 where: Sequence[str]) -> None:
    """Raise InvalidInput listing every problem of every input (`where[i]` names input i)."""
    schema = definition.get("input_schema")
    if not schema:
        return
    validator = validator_for(schema)(schema)
    problems = []
    for label, value in zip(where, inputs):
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
            problems.append((f"{label}{path}", error.message))
    if problems:
        raise InvalidInput(workflow_id, problems)
