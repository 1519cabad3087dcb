"""The codec: every type round-trips, every failure is a typed error, old data stays readable."""

from __future__ import annotations

import io
import json
import math
import time
import typing
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from types import UnionType
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bend.contracts.codec import MAGIC, RECORD_TYPES, Codec, decode, encode
from bend.contracts.errors import (
    CorruptPayload, SchemaViolation, UnknownEventType, UnknownSchema,
)
from bend.contracts.history import writer_schemas
from bend.contracts.schemas import current_schemas, fingerprint_of, parse
from bend.core.events import Event, StepSucceeded, json_fields

UTC = timezone.utc
_INT32 = {"workflow_version"}  # Avro int, not long

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
_zones = st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23),
                                           max_value=timedelta(hours=23)))
_datetimes = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                          timezones=_zones)


def _values(hint: Any, name: str) -> st.SearchStrategy[Any]:
    """Values of a dataclass field's declared type."""
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return st.none() | _values(inner, name)
    if hint is int:
        bits = 31 if name in _INT32 else 63
        return st.integers(-(2**bits), 2**bits - 1)
    return {str: st.text(max_size=20), bool: st.booleans(), bytes: st.binary(max_size=20),
            datetime: _datetimes, float: st.floats(allow_nan=False, allow_infinity=False)}[hint]


def records(cls: type) -> st.SearchStrategy[Any]:
    """Instances of `cls` with every field drawn from its declared type."""
    hints = typing.get_type_hints(cls)
    as_json = json_fields(cls)
    return st.builds(cls, **{
        f.name: _json if f.name in as_json else _values(hints[f.name], f.name)
        for f in fields(cls)
    })


def _step(**changes: Any) -> StepSucceeded:
    base = StepSucceeded(
        event_id="e-1", run_id="r-1", workflow_id="wf", workflow_version=2, seq=7,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), step_id="summarize",
        output={"text": "hi", "n": [1, 2.5, None]}, duration_ms=12,
    )
    return replace(base, **changes)


@pytest.mark.parametrize("cls", list(RECORD_TYPES.values()), ids=list(RECORD_TYPES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_record_type_round_trips_through_bytes(cls: type, data: st.DataObject) -> None:
    record = data.draw(records(cls))
    assert decode(encode(record)) == record


def test_the_wire_format_is_single_object_encoding_with_the_schema_fingerprint() -> None:
    data = encode(_step())
    fingerprint = current_schemas()["StepSucceeded"].fingerprint
    assert data[:2] == b"\xc3\x01"
    assert int.from_bytes(data[2:10], "little") == fingerprint


def test_json_fields_travel_as_compact_json_text_in_their_key_order() -> None:
    data = encode(_step(output={"b": 1, "a": [1, 2]}))
    assert b'{"b":1,"a":[1,2]}' in data
    assert decode(data).output == {"b": 1, "a": [1, 2]}


def test_a_type_outside_the_catalogue_cannot_be_encoded() -> None:
    @dataclass(frozen=True, kw_only=True, slots=True)
    class Stranger(Event):
        """Not in EVENT_TYPES."""

    with pytest.raises(UnknownEventType, match="Stranger"):
        encode(Stranger(event_id="e", workflow_id="w", occurred_at=datetime.now(UTC)))


def test_a_record_of_a_type_no_longer_in_the_catalogue_cannot_be_decoded() -> None:
    old = {"type": "record", "name": "StepParked", "namespace": "bend.events",
           "fields": [{"name": "step_id", "type": "string"}]}
    codec = Codec(writers={fingerprint_of(old): ("StepParked", old)})
    data = MAGIC + fingerprint_of(old).to_bytes(8, "little") + b"\x02s"
    with pytest.raises(UnknownEventType, match="StepParked"):
        codec.decode(data)


def test_an_unknown_fingerprint_says_which_and_how_to_record_it() -> None:
    data = MAGIC + (0x1234).to_bytes(8, "little") + b"\x00"
    with pytest.raises(UnknownSchema, match="0000000000001234") as err:
        decode(data)
    assert "bend.contracts.history record" in str(err.value)


@pytest.mark.parametrize("data, reason", [
    (b"", "the value is empty"),
    (b"hello, world", "bad magic 6865"),
    (b"\xc3\x01\x00\x01", "truncated header"),
    (b"\x00\x00\x00\x00\x07rest", "schema-registry wire format"),
])
def test_bytes_without_a_whole_header_are_corrupt(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptPayload, match=reason):
        decode(data)


def test_a_truncated_body_is_corrupt() -> None:
    with pytest.raises(CorruptPayload, match="undecodable StepSucceeded body"):
        decode(encode(_step())[:-3])


def test_trailing_bytes_after_the_body_are_corrupt() -> None:
    with pytest.raises(CorruptPayload, match="1 trailing byte"):
        decode(encode(_step()) + b"\x00")


def test_a_body_that_is_not_avro_is_corrupt() -> None:
    header = encode(_step())[:10]
    with pytest.raises(CorruptPayload, match="undecodable"):
        decode(header + b"\xff" * 12)


def test_a_json_field_holding_no_json_is_corrupt() -> None:
    with pytest.raises(CorruptPayload, match="StepSucceeded.output is not JSON"):
        decode(_raw_step(output="{not json"))


def test_an_envelope_naming_another_type_is_corrupt() -> None:
    with pytest.raises(CorruptPayload, match="envelope says 'StepFailed'"):
        decode(_raw_step(event_type="StepFailed"))


def _raw_step(event_type: str = "StepSucceeded", output: str = "null") -> bytes:
    info = current_schemas()["StepSucceeded"]
    env = {"event_id": "e", "event_type": event_type, "run_id": "r", "workflow_id": "w",
           "workflow_version": 1, "seq": 1, "occurred_at": datetime.now(UTC),
           "causation_id": None, "correlation_id": None, "tenant": "t", "project": "p"}
    body = io.BytesIO()
    schemaless_writer(body, info.parsed, {"envelope": env, "step_id": "s", "attempt": 1,
                                          "output": output, "duration_ms": 0})
    return MAGIC + info.fingerprint.to_bytes(8, "little") + body.getvalue()


@pytest.mark.parametrize("changes, field, problem", [
    ({"attempt": "2"}, "attempt", "is not an int"),
    ({"attempt": 1.5}, "attempt", "is not an int"),
    ({"attempt": True}, "attempt", "is not an int"),
    ({"duration_ms": 2**70}, "duration_ms", "too large"),
    ({"seq": "seven"}, "seq", "is not an int"),
    ({"workflow_version": 2**40}, "workflow_version", "32 bits"),
    ({"step_id": None}, "step_id", "is not a str"),
    ({"run_id": 12}, "run_id", "is not null or string"),
    ({"occurred_at": "2026-01-01"}, "occurred_at", "is not a datetime"),
    ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at", "naive datetime"),
    ({"output": {1, 2}}, "output", "not a JSON value"),
    ({"output": {"x": math.nan}}, "output", "not a JSON value"),
])
def test_a_value_that_does_not_fit_its_schema_names_the_field(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(SchemaViolation, match=problem) as err:
        encode(_step(**changes))
    assert err.value.field == field
    assert f"StepSucceeded.{field}" in str(err.value)


def test_data_written_with_an_older_schema_decodes_with_the_current_one() -> None:
    current = current_schemas()["StepSucceeded"]
    older = json.loads(json.dumps(current.expanded))
    # The older version had no duration_ms and an int attempt (since widened to long).
    older["fields"] = [f for f in older["fields"] if f["name"] != "duration_ms"]
    next(f for f in older["fields"] if f["name"] == "attempt")["type"] = "int"
    fp = fingerprint_of(older)
    codec = Codec(writers={**writer_schemas(), fp: ("StepSucceeded", older)})
    new = encode(_step(attempt=3))
    body = io.BytesIO()
    values = {"envelope": {"event_id": "e-1", "event_type": "StepSucceeded", "run_id": "r-1",
                           "workflow_id": "wf", "workflow_version": 2, "seq": 7,
                           "occurred_at": _step().occurred_at, "causation_id": None,
                           "correlation_id": None, "tenant": "default", "project": "default"},
              "step_id": "summarize", "attempt": 3, "output": '{"text":"hi","n":[1,2.5,null]}'}
    schemaless_writer(body, parse(older), values)
    old = MAGIC + fp.to_bytes(8, "little") + body.getvalue()
    assert codec.decode(old) == _step(attempt=3, duration_ms=0)
    assert codec.decode(new) == _step(attempt=3)


def test_encode_and_decode_stay_cheap_per_record() -> None:
    # A schema parsed per call costs milliseconds; the cached path costs tens of microseconds.
    record = _step(output={"text": "hello world " * 10, "tokens": 123, "items": [1, 2, 3]})
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        decode(encode(record))
    per_record_us = (time.perf_counter() - started) / count * 1e6
    assert per_record_us < 400, f"encode+decode took {per_record_us:.0f} us per record"
