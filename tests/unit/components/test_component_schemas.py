"""Inputs and outputs are checked against the component's JSON Schemas at the call boundary."""

from __future__ import annotations

import pytest

from bend.components import (
    ComponentContext, ComponentFailed, InvalidComponentInput, InvalidComponentOutput, component,
)
from bend.components.errors import InvalidComponent

SCHEMA = {
    "type": "object",
    "required": ["city", "days"],
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1},
        "options": {"type": "object", "properties": {"units": {"enum": ["c", "f"]}}},
    },
    "additionalProperties": False,
}
OUTPUT = {"type": "object", "required": ["forecast"],
          "properties": {"forecast": {"type": "array", "items": {"type": "number"}}}}


@component("forecast", "1", input_schema=SCHEMA, output_schema=OUTPUT)
def forecast(city: str, days: int, options: dict | None = None) -> dict:
    """Return `days` temperatures."""
    return {"forecast": [20.5] * days}


@component("broken", "1", output_schema=OUTPUT)
async def broken() -> dict:
    """Break its own output schema."""
    return {"forecast": ["warm"]}


async def test_valid_inputs_reach_the_function_as_keyword_arguments() -> None:
    assert await forecast.invoke({"city": "Oslo", "days": 2}) == {"forecast": [20.5, 20.5]}


@pytest.mark.parametrize(("inputs", "field", "words"), [
    ({"days": 2}, "(root)", "'city' is a required property"),
    ({"city": 3, "days": 2}, "'city'", "is not of type 'string'"),
    ({"city": "Oslo", "days": 0}, "'days'", "less than the minimum"),
    ({"city": "Oslo", "days": 1, "options": {"units": "k"}}, "'options.units'", "is not one of"),
    ({"city": "Oslo", "days": 1, "extra": True}, "(root)", "Additional properties"),
])
async def test_invalid_inputs_raise_an_error_naming_the_field(inputs, field, words) -> None:
    with pytest.raises(InvalidComponentInput) as err:
        await forecast.invoke(inputs)
    assert err.value.field == field
    assert words in err.value.reason
    assert "forecast@1" in err.value.message and not err.value.retryable


async def test_output_breaking_its_schema_is_a_component_bug_naming_the_field() -> None:
    with pytest.raises(InvalidComponentOutput, match=r"'forecast\[0\]'") as err:
        await broken.invoke({})
    assert not err.value.retryable


async def test_output_that_is_not_json_is_refused() -> None:
    @component("sets", "1")
    def sets() -> object:
        return {1, 2}

    with pytest.raises(InvalidComponentOutput, match="not JSON"):
        await sets.invoke({})


async def test_a_parameter_named_context_receives_the_idempotency_key() -> None:
    @component("keyed", "1")
    async def keyed(context: ComponentContext) -> dict:
        return {"key": context.idempotency_key, "step": context.step_id}

    ctx = ComponentContext(idempotency_key="run-1:step-a:1", step_id="a")
    assert await keyed.invoke({}, ctx) == {"key": "run-1:step-a:1", "step": "a"}


async def test_a_component_may_refuse_retryably_or_not() -> None:
    @component("flaky", "1")
    def flaky(retry: bool = False) -> dict:
        raise ComponentFailed("upstream busy", retryable=retry)

    with pytest.raises(ComponentFailed) as err:
        await flaky.invoke({"retry": True})
    assert err.value.retryable


def test_decorated_components_stay_callable_as_plain_functions() -> None:
    assert forecast("Oslo", 1) == {"forecast": [20.5]}


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"name": "has space"}, "name"),
    ({"name": "ok", "version": "v 1"}, "version"),
    ({"name": "ok", "input_schema": {"type": "string"}}, "object"),
    ({"name": "ok", "input_schema": {"type": "object", "properties": 3}}, "not a valid JSON Schema"),
])
def test_a_wrong_declaration_is_refused_at_import_time(kwargs: dict, words: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(InvalidComponent, match=words):
        component(name, kwargs.pop("version", "1"), **kwargs)(dict)
