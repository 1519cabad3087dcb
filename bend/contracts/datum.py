"""A record class's encoding plan: dataclass <-> Avro datum, values checked against the schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from types import MemberDescriptorType
from typing import IO, Any

import orjson
from fastavro import schemaless_writer
from fastavro.validation import ValidationError, validate

from bend.contracts.errors import CorruptPayload, SchemaViolation
from bend.contracts.schemas import SchemaInfo
from bend.core.events import ENVELOPE_FIELDS, json_fields

__all__ = ["Shape", "build", "dumps_json", "loads_json", "write"]

_Check = Callable[[Any], str | None]  # None when the value fits, else what is wrong
_Plan = tuple[str, frozenset[type] | None, _Check | None, _Check | None]
_TypedPlan = tuple[str, frozenset[type], _Check | None, _Check | None]  # a field not JSON


# One encoder, built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=False, allow_nan=False)


def dumps_json(value: Any) -> str:
    """Bend's one JSON spelling for JSON fields: compact, keys in their given order."""
    return _ENCODER.encode(value)


# 19 digits in a row may be an integer past 64 bits, which orjson reads as a float.
_LONG_DIGITS = re.compile(r"\d{19}")


def loads_json(text: str) -> Any:
    """`json.loads(text)`, the same value, ~10x faster: orjson, except for what it reads
    otherwise (integers past 64 bits) or refuses (NaN, lone surrogates, deep nesting)."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


@dataclass(frozen=True, slots=True)
class Shape:
    """How one record class maps onto its schema, computed once per class."""

    cls: type
    info: SchemaInfo
    # (field, the Python types that fit, a check of the value beyond its type, the full check)
    envelope: tuple[_TypedPlan, ...]
    payload: tuple[_Plan, ...]  # a JSON field's types are None
    # Each field's slot setter, envelope first, or None if the class has no slots: a decoded
    # datum fills every slot straight (a frozen dataclass's __init__ costs ~0.5 µs a field).
    setters: tuple[tuple[str, Callable[[Any, Any], None]], ...] | None = None
    json_names: tuple[str, ...] = ()  # the payload's JSON fields

    @classmethod
    def of(cls, record_cls: type, info: SchemaInfo) -> Shape:
        """The plan for `record_cls`; fails if its fields and its schema's differ."""
        top = {f["name"]: f["type"] for f in info.expanded["fields"]}
        env_schema = top.pop("envelope", None)
        if not isinstance(env_schema, dict) or env_schema.get("type") != "record":
            raise ValueError(f"{info.name}.avsc must start with the field envelope: bend.Envelope")
        env = {f["name"]: f["type"] for f in env_schema["fields"]}
        if env.pop("event_type", None) != "string" or tuple(env) != ENVELOPE_FIELDS:
            raise ValueError(f"{info.name}.avsc's envelope differs from bend.core Envelope")
        mine = [f.name for f in fields(record_cls) if f.name not in ENVELOPE_FIELDS]
        if list(top) != mine:
            raise ValueError(f"{info.name}.avsc fields {list(top)} differ from the dataclass's "
                             f"{mine}; the schema follows the class one to one")
        as_json = json_fields(record_cls)
        return cls(
            record_cls, info,
            tuple(_plan(n, t) for n, t in env.items()),
            tuple((n, None, None, None) if n in as_json else _plan(n, t) for n, t in top.items()),
            _slot_setters(record_cls, [*env, *top]),
            tuple(n for n in top if n in as_json),
        )


def write(out: IO[bytes], shape: Shape, record: Any) -> None:
    """Write `record`'s schemaless Avro body to `out`; SchemaViolation names a misfit field."""
    env: dict[str, Any] = {"event_type": shape.info.name}
    fits: frozenset[type] | None  # the payload's JSON fields have none
    for field, fits, strict, check in shape.envelope:
        value = getattr(record, field)
        if type(value) not in fits or (strict is not None and strict(value) is not None):
            raise _misfit(shape, field, value, check)
        env[field] = value
    values: dict[str, Any] = {"envelope": env}
    for field, fits, strict, check in shape.payload:
        value = getattr(record, field)
        if fits is None:
            try:
                value = dumps_json(value)
            except (TypeError, ValueError) as err:
                raise SchemaViolation(shape.info.name, field, f"not a JSON value ({err})") from err
        elif type(value) not in fits or (strict is not None and strict(value) is not None):
            raise _misfit(shape, field, value, check)
        values[field] = value
    try:
        schemaless_writer(out, shape.info.parsed, values)
    except Exception as err:  # a misfit the checks above let through: ask fastavro which
        raise _violation(shape, values, err) from err


def _misfit(shape: Shape, field: str, value: Any, check: _Check | None) -> SchemaViolation:
    problem = check(value) if check is not None else None
    return SchemaViolation(shape.info.name, field, problem or (
        f"{value!r:.60} ({type(value).__name__}) does not fit its schema type"
    ))


def build(shape: Shape, values: dict[str, Any], size: int) -> Any:
    """The record of a decoded datum; JSON fields parsed back to Python values."""
    env = values.pop("envelope")
    written_type = env.pop("event_type")
    if written_type != shape.info.name:
        raise CorruptPayload(f"envelope says {written_type!r} but the schema is "
                             f"{shape.info.name}", size)
    for field in shape.json_names:
        try:
            values[field] = loads_json(values[field])
        except ValueError as err:
            raise CorruptPayload(f"{shape.info.name}.{field} is not JSON ({err})",
                                 size) from err
    setters = shape.setters
    if setters is None or len(env) + len(values) != len(setters):
        return shape.cls(**env, **values)  # the class's own checks name what is amiss
    # The datum holds exactly the class's fields (read with, or resolved to, the schema that
    # `Shape.of` matched to the class one to one): fill the slots, as __init__ would.
    record: Any = object.__new__(shape.cls)
    values.update(env)
    for name, put in setters:
        put(record, values[name])
    return record


def _slot_setters(cls: type, names: list[str]
                  ) -> tuple[tuple[str, Callable[[Any, Any], None]], ...] | None:
    """Each field's slot descriptor's setter; None if a field is no slot or the class has a
    __post_init__ (then building calls __init__)."""
    if hasattr(cls, "__post_init__"):
        return None
    setters = []
    for name in names:
        slot = getattr(cls, name, None)
        if not isinstance(slot, MemberDescriptorType):
            return None
        setters.append((name, slot.__set__))
    return tuple(setters)


def _violation(shape: Shape, values: dict[str, Any], err: Exception) -> SchemaViolation:
    try:
        validate(values, shape.info.parsed, raise_errors=True)
    except ValidationError as found:
        where = found.errors[0].field or ""
        return SchemaViolation(shape.info.name, where.rpartition(".")[2] or "?", str(err))
    return SchemaViolation(shape.info.name, "?", str(err))


def _plan(field: str, avro_type: Any) -> _TypedPlan:
    """The checks of one field: its fitting types (fast), then what the type cannot say."""
    fits = _fits(avro_type)
    if fits is None:
        raise ValueError(f"field {field}: Bend's schemas use no {avro_type!r}; extend datum.py")
    check = _checker(avro_type)
    exact = all(_STRICT.get(_describe(b)) is None
                for b in (avro_type if isinstance(avro_type, list) else [avro_type]))
    return field, fits, None if exact else check, check


def _fits(avro_type: Any) -> frozenset[type] | None:
    if isinstance(avro_type, list):
        parts = [_fits(b) for b in avro_type]
        if any(p is None for p in parts):
            return None
        return frozenset[type]().union(*(p for p in parts if p is not None))
    return _TYPES.get(_describe(avro_type))


_LONG = (-(2**63), 2**63 - 1)
_INT = (-(2**31), 2**31 - 1)


def _checker(avro_type: Any) -> _Check:
    """A fast check of a Python value against a (field) schema of Bend's kinds."""
    if isinstance(avro_type, list):
        branches = [_checker(b) for b in avro_type]
        names = " or ".join(_describe(b) for b in avro_type)

        def union(value: Any) -> str | None:
            if any(check(value) is None for check in branches):
                return None
            return f"{value!r:.60} ({type(value).__name__}) is not {names}"
        return union
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in ("timestamp-micros", "timestamp-millis"):
            return _timestamp
        return _checker(avro_type["type"]) if isinstance(avro_type["type"], str) else _anything
    return _PRIMITIVE_CHECKS.get(avro_type, _anything)


def _expect(kind: str, ok: Callable[[Any], bool]) -> _Check:
    def check(value: Any) -> str | None:
        return None if ok(value) else f"{value!r:.60} ({type(value).__name__}) is not {kind}"
    return check


def _integer(bounds: tuple[int, int]) -> Callable[[Any], bool]:
    low, high = bounds
    return lambda v: type(v) is int and low <= v <= high  # bool is no int here


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return f"{value!r:.60} ({type(value).__name__}) is not a datetime"
    if value.tzinfo is None:
        return f"{value.isoformat()} is a naive datetime; give it a time zone (timezone.utc)"
    return None


def _anything(_value: Any) -> str | None:
    return None


def _describe(avro_type: Any) -> str:
    return avro_type if isinstance(avro_type, str) else str(avro_type.get("logicalType")
                                                             or avro_type.get("type"))


_PRIMITIVE_CHECKS: dict[str, _Check] = {
    "null": _expect("null", lambda v: v is None),
    "string": _expect("a str", lambda v: isinstance(v, str)),
    "boolean": _expect("a bool", lambda v: isinstance(v, bool)),
    "long": _expect("an int of 64 bits", _integer(_LONG)),
    "int": _expect("an int of 32 bits", _integer(_INT)),
    "bytes": _expect("bytes", lambda v: isinstance(v, (bytes, bytearray))),
    "float": _expect("a float", lambda v: type(v) in (int, float)),
    "double": _expect("a float", lambda v: type(v) in (int, float)),
}

_TYPES: dict[str, frozenset[type]] = {
    "null": frozenset({type(None)}),
    "string": frozenset({str}),
    "boolean": frozenset({bool}),
    "long": frozenset({int}),
    "int": frozenset({int}),
    "bytes": frozenset({bytes, bytearray}),
    "float": frozenset({int, float}),
    "double": frozenset({int, float}),
    "timestamp-micros": frozenset({datetime}),
    "timestamp-millis": frozenset({datetime}),
}
# Kinds whose Python type is not enough: 32-bit ranges, time zones (fastavro itself refuses
# an int past 64 bits).
_STRICT: dict[str, bool] = {"int": True, "timestamp-micros": True,
                            "timestamp-millis": True}
