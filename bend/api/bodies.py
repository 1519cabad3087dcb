"""Workflow definitions from request bodies: JSON or YAML, every problem with its location."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial

from fastapi import Request

from bend.api.inputs import nul_locations
from bend.api.problems import UnreadableBody
from bend.core.budgets import budget_problems
from bend.core.definitions import (
    WorkflowDefinition, definition_json, load_definition, parse_definition,
)
from bend.core.problems import InvalidDefinition, Problem
from bend.ops.metrics import price_of
from bend.settings import LlmPrice

__all__ = ["DEFINITION_BODY", "definition_from_text", "read_definition"]


_JSON = ("application/json",)
_YAML = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")

# The request body as OpenAPI shows it (the route reads the raw body itself).
DEFINITION_BODY = {
    "requestBody": {
        "required": True,
        "description": "A workflow definition (name, steps, ...), as JSON or YAML.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    },
}


async def read_definition(request: Request) -> WorkflowDefinition:
    """The definition in the body; InvalidDefinition (422) listing every problem."""
    defn = await _read(request)
    # Budgets below one call's cost: the core prices nothing, the settings' price table does.
    settings = getattr(getattr(request.app.state, "bend", None), "settings", None)
    if settings is not None:
        prices = settings.ops.prices()
        too_small = [p for p in budget_problems(defn, partial(_price, prices))
                     if p.location.endswith("max_cost_usd")]
        if too_small:
            raise InvalidDefinition(too_small)
    return _storable(defn)


def definition_from_text(text: str) -> WorkflowDefinition:
    """The definition in YAML or JSON `text` (as a YAML body is read), checked as a body is."""
    return _storable(load_definition(text))


def _storable(defn: WorkflowDefinition) -> WorkflowDefinition:
    # Postgres stores no NUL in text or JSONB: such a definition could never be projected.
    nuls = nul_locations(definition_json(defn))
    if nuls:
        raise InvalidDefinition([Problem(where.lstrip(".") or "(document)",
                                         "holds a NUL character (\\u0000) or an unpaired "
                                         "surrogate; remove it", "nul")
                                 for where in nuls])
    return defn


def _price(prices: Mapping[str, LlmPrice], model: str) -> tuple[float, float] | None:
    price = price_of(model, prices)
    return (price.input_per_mtok, price.output_per_mtok) if price is not None else None


async def _read(request: Request) -> WorkflowDefinition:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in _JSON + _YAML:
        raise UnreadableBody(media_type, [*_JSON, "application/yaml"])
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidDefinition([Problem("(document)", f"the body is not UTF-8 text ({err})",
                                         "syntax")]) from None
    if media_type in _JSON:
        try:
            data = json.loads(text)
        except RecursionError:
            raise InvalidDefinition([Problem("(document)", "it nests too deeply to read; "
                                             "flatten it", "depth")]) from None
        except json.JSONDecodeError as err:
            raise InvalidDefinition([Problem(f"line {err.lineno}, column {err.colno}",
                                             f"not valid JSON: {err.msg}", "syntax")]) from None
        return parse_definition(data)
    return load_definition(text)
