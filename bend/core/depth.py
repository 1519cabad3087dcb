"""How deeply a JSON value nests: bounded at the door, so no parser, validator, encoder or
database walking it recursively runs out of stack."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_DEPTH", "deeper_than"]

MAX_DEPTH = 64  # levels of objects and arrays; real definitions and inputs use a handful


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels (walked iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
