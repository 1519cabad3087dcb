"""The start form made from an input schema: fields, the input read back, problems placed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for

from bend.services.errors import InvalidInput
from bend.services.inputs import check_inputs
from bend.web.inputform import input_fields, place_problems, read_input

SCHEMA = {
    "type": "object",
    "required": ["who", "times"],
    "properties": {
        "who": {"type": "string", "title": "Who", "description": "Whom to greet",
                "minLength": 2},
        "times": {"type": "integer", "default": 1},
        "ratio": {"type": "number"},
        "loud": {"type": "boolean"},
        "tone": {"enum": ["warm", "dry", 3]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def _form(**typed: str) -> dict[str, str]:
    return {f"input.{k}": v for k, v in typed.items()}


def test_each_property_gets_a_field_of_its_kind_in_order() -> None:
    fields = input_fields(SCHEMA)
    assert fields is not None
    assert [(f.name, f.kind, f.required) for f in fields] == [
        ("who", "text", True), ("times", "integer", True), ("ratio", "number", False),
        ("loud", "choice", False), ("tone", "choice", False), ("tags", "json", False)]
    assert fields[0].label == "Who" and fields[0].description == "Whom to greet"
    assert fields[1].initial == "1"
    assert fields[4].choices == (('"warm"', "warm"), ('"dry"', "dry"), ("3", "3"))
    assert fields[0].param == "input.who"


def test_schemas_without_properties_get_the_json_box() -> None:
    for schema in (None, {}, {"type": "array"}, {"type": "object"}, "text"):
        assert input_fields(schema) is None


def test_typed_text_is_read_into_the_input_and_empty_fields_are_left_out() -> None:
    fields = input_fields(SCHEMA)
    assert fields is not None
    value, errors = read_input(fields, _form(who="ada", times="3", ratio="0.5", loud="true",
                                             tone="3", tags='["a"]'))
    assert not errors
    assert value == {"who": "ada", "times": 3, "ratio": 0.5, "loud": True, "tone": 3,
                     "tags": ["a"]}
    value, errors = read_input(fields, _form(who="ada", times=" "))
    assert value == {"who": "ada"} and not errors


def test_what_cannot_be_read_is_said_next_to_its_field() -> None:
    fields = input_fields(SCHEMA)
    assert fields is not None
    _, errors = read_input(fields, _form(times="2.5", ratio="nan", tone='"loud"', tags="[1,"))
    assert set(errors.fields) == {"times", "ratio", "tone", "tags"}
    assert "whole number" in errors.fields["times"][0]
    assert errors.fields["tags"][0].startswith("not JSON")
    assert not errors.general


def test_the_servers_problems_land_on_their_fields() -> None:
    fields = input_fields(SCHEMA)
    try:
        check_inputs("wf", {"input_schema": SCHEMA}, [{"who": "a", "tags": [1]}], ["input"])
    except InvalidInput as err:
        errors = place_problems(err.problems, fields)
    else:
        raise AssertionError("the input should not match")
    assert set(errors.fields) == {"who", "times", "tags"}
    assert "required" in errors.fields["times"][0]
    placed = place_problems([("input", "is not of type 'object'"),
                             ("input.other", "unknown")], fields)
    assert placed.general == ["input: is not of type 'object'", "input.other: unknown"]


_VALUES: dict[str, Any] = {
    "who": st.text(min_size=1).filter(str.strip).filter(lambda s: "\x00" not in s),
    "times": st.integers(-10**12, 10**12),
    "ratio": st.floats(allow_nan=False, allow_infinity=False),
    "loud": st.booleans(),
    "tone": st.sampled_from(["warm", "dry", 3]),
    "tags": st.lists(st.text(max_size=5), max_size=3),
}


@settings(max_examples=80, deadline=None)
@given(st.fixed_dictionaries({}, optional=_VALUES))
def test_an_input_shown_in_the_form_reads_back_as_itself(value: dict[str, Any]) -> None:
    fields = input_fields(SCHEMA)
    assert fields is not None
    form = {}
    for f in fields:
        if f.name in value:
            v = value[f.name]
            form[f.param] = v if f.kind == "text" else repr(v) if f.kind == "number" \
                else json.dumps(v)
    read, errors = read_input(fields, form)
    assert not errors and read == value
    validator_for(SCHEMA)(SCHEMA)  # the schema itself is valid
