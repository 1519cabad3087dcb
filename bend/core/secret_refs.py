"""Which secrets a workflow definition names: `{{ secrets.NAME }}` templates and secret fields."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SECRET_FIELDS", "SECRET_REFERENCE", "secrets_named"]

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
