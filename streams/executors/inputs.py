"""Parsing a task's evaluated input into the executor's typed view of its node."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from streams.executors.errors import InvalidStepInput

__all__ = ["parse_input"]

M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], node_type: str, value: Any) -> M:
    """`value` as `model`, or `InvalidStepInput` naming the first wrong field."""
    if not isinstance(value, dict):
        raise InvalidStepInput(node_type, f"expected an object, got {type(value).__name__}")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise InvalidStepInput(node_type, f"{where}: {first['msg']}") from exc
