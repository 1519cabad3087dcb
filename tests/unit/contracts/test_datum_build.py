"""Decoding builds records by filling their slots and reads JSON fields with orjson: the
records and values are exactly those `__init__` and `json.loads` give."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bend.contracts.codec import RECORD_TYPES, Codec, encode
from bend.contracts.datum import loads_json
from tests.unit.contracts.test_codec import _json, records


def _typed(value: Any) -> Any:
    """`value` with each number's type beside it, so 1 and 1.0 (and 2**70 read as a float)
    differ; NaN equals NaN."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def _hash(record: Any) -> int | str:
    try:
        return hash(record)
    except TypeError as err:  # a JSON field holds a list or dict: unhashable either way
        return str(err)


@pytest.mark.parametrize("cls", list(RECORD_TYPES.values()), ids=list(RECORD_TYPES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_decoded_record_is_the_record_its_init_builds(cls: type, data: st.DataObject) -> None:
    record = data.draw(records(cls))
    decoded = Codec().decode(encode(record))
    rebuilt = cls(**{f.name: getattr(decoded, f.name) for f in dataclasses.fields(cls)})
    assert type(decoded) is cls
    assert decoded == rebuilt == record
    assert _hash(decoded) == _hash(rebuilt)
    assert repr(decoded) == repr(rebuilt)
    assert [_typed(getattr(decoded, f.name)) for f in dataclasses.fields(cls)] == \
        [_typed(getattr(rebuilt, f.name)) for f in dataclasses.fields(cls)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.event_id = "changed"  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(value=_json)
def test_json_text_reads_as_the_standard_library_reads_it(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"),
                                               ensure_ascii=False)):
        assert _typed(loads_json(text)) == _typed(json.loads(text))


@pytest.mark.parametrize("text", [
    "123456789012345678901234567890", "-9223372036854775809", "18446744073709551616",
    '{"big": 2361183241434822606848, "f": 0.1234567890123456789}', "NaN", "[Infinity]",
    "1e400", '"\\ud800"', "[" * 200 + "]" * 200, '{"a": 1, "a": 2}', " 5 ",
])
def test_what_orjson_reads_otherwise_or_refuses_reads_as_the_standard_library_does(
        text: str) -> None:
    assert _typed(loads_json(text)) == _typed(json.loads(text))


def test_json_nested_past_orjson_depth_fails_as_it_did() -> None:
    text = "[" * 5000 + "]" * 5000
    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(RecursionError):
        loads_json(text)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nul"])
def test_text_that_is_no_json_fails_as_it_did(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        loads_json(text)
