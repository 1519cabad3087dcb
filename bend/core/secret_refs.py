"""Which secrets a workflow definition names: `{{ secrets.NAME }}` templates and secret fields;
filling the templates with their values where a step sends them."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "SECRET_FIELDS", "SECRET_REFERENCE", "fill_secrets", "secret_names", "secrets_named",
]

# How steps name a secret in a header or body value; the value is filled in where it is sent.
SECRET_REFERENCE = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_.-]{0,127})\s*\}\}")
# Fields whose value is the NAME of a secret (an LLM's key, a webhook's signing secret).
SECRET_FIELDS = frozenset({"api_key_secret", "secret", "secret_name"})


def secrets_named(value: Any) -> frozenset[str]:
    """The secret names `value` (a definition, or any part of one) refers to."""
    if isinstance(value, str):
        return frozenset(SECRET_REFERENCE.findall(value))
    if isinstance(value, list):
        return frozenset().union(*(secrets_named(v) for v in value))
    if isinstance(value, dict):
        named = {v for k, v in value.items() if k in SECRET_FIELDS and isinstance(v, str) and v}
        return frozenset(named).union(*(secrets_named(v) for v in value.values()))
    return frozenset()


def secret_names(value: Any) -> set[str]:
    """The secret names `{{ secrets.NAME }}` in the strings of `value`."""
    if isinstance(value, str):
        return set(SECRET_REFERENCE.findall(value))
    if isinstance(value, dict):
        return {n for v in value.values() for n in secret_names(v)}
    if isinstance(value, list):
        return {n for v in value for n in secret_names(v)}
    return set()


def fill_secrets(value: Any, values: dict[str, str]) -> Any:
    """`value` with each `{{ secrets.NAME }}` replaced by its value."""
    if isinstance(value, str):
        return SECRET_REFERENCE.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, dict):
        return {k: fill_secrets(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_secrets(v, values) for v in value]
    return value
