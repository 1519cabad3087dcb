"""The compatibility checker on hand-made pairs, confirmed by fastavro reading real data."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from bend.contracts.compat import can_read, incompatibilities


def rec(*fields: dict[str, Any], name: str = "R", **extra: Any) -> dict[str, Any]:
    """A record schema with `fields`."""
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields), **extra}


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    """A field."""
    return {"name": name, "type": type_, **extra}


COLOR = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}
BASE = rec(f("id", "string"), f("n", "int"))

COMPATIBLE = {
    "identical": (BASE, BASE),
    "field added with a default": (BASE, rec(f("id", "string"), f("n", "int"),
                                             f("x", "string", default=""))),
    "optional field added": (BASE, rec(f("id", "string"), f("n", "int"),
                                       f("x", ["null", "long"], default=None))),
    "field removed": (BASE, rec(f("id", "string"))),
    "int widened to long": (BASE, rec(f("id", "string"), f("n", "long"))),
    "int widened to double": (BASE, rec(f("id", "string"), f("n", "double"))),
    "float widened to double": (rec(f("v", "float")), rec(f("v", "double"))),
    "string read as bytes": (rec(f("v", "string")), rec(f("v", "bytes"))),
    "type made nullable": (BASE, rec(f("id", ["null", "string"]), f("n", "int"))),
    "union widened": (rec(f("v", ["null", "int"])), rec(f("v", ["null", "int", "string"]))),
    "enum symbol added": (rec(f("c", COLOR)),
                          rec(f("c", {**COLOR, "symbols": ["RED", "GREEN", "BLUE", "PINK"]}))),
    "enum symbol removed with an enum default": (
        rec(f("c", COLOR)),
        rec(f("c", {**COLOR, "symbols": ["RED", "GREEN", "OTHER"], "default": "OTHER"}))),
    "array items widened": (rec(f("a", {"type": "array", "items": "int"})),
                            rec(f("a", {"type": "array", "items": "long"}))),
    "map values widened": (rec(f("m", {"type": "map", "values": "float"})),
                           rec(f("m", {"type": "map", "values": "double"}))),
    "nested record gains a defaulted field": (
        rec(f("in", rec(f("a", "int"), name="In"))),
        rec(f("in", rec(f("a", "int"), f("b", "boolean", default=False), name="In")))),
    "record renamed with an alias": (BASE, rec(f("id", "string"), f("n", "int"), name="S",
                                               aliases=["R"])),
    "field renamed with an alias": (BASE, rec(f("key", "string", aliases=["id"]),
                                              f("n", "int"))),
    "recursive list": (
        rec(f("v", "int"), f("next", ["null", "t.Node"], default=None), name="Node"),
        rec(f("v", "long"), f("next", ["null", "t.Node"], default=None), name="Node")),
}

INCOMPATIBLE = {
    "field added without a default": (
        BASE, rec(f("id", "string"), f("n", "int"), f("x", "string")), "x: field added"),
    "long narrowed to int": (rec(f("n", "long")), rec(f("n", "int")),
                             "long cannot be read as int"),
    "double narrowed to float": (rec(f("n", "double")), rec(f("n", "float")),
                                 "double cannot be read as float"),
    "string changed to int": (BASE, rec(f("id", "int"), f("n", "int")),
                              "string cannot be read as int"),
    "nullable made required": (rec(f("v", ["null", "string"])), rec(f("v", "string")),
                               "null cannot be read as string"),
    "bytes read as string": (rec(f("v", "bytes")), rec(f("v", "string")),
                             "bytes need not be UTF-8"),
    "union branch dropped": (rec(f("v", ["null", "int", "string"])),
                             rec(f("v", ["null", "int"])), "string matches no branch"),
    "enum symbol removed": (rec(f("c", COLOR)),
                            rec(f("c", {**COLOR, "symbols": ["RED", "GREEN"]})),
                            "lost symbol(s) BLUE"),
    "enum renamed": (rec(f("c", COLOR)), rec(f("c", {**COLOR, "name": "Colour"})),
                     "enum Color cannot be read as enum Colour"),
    "record renamed": (BASE, rec(f("id", "string"), f("n", "int"), name="S"),
                       "record R cannot be read as record S"),
    "fixed resized": (rec(f("h", {"type": "fixed", "name": "H", "size": 16})),
                      rec(f("h", {"type": "fixed", "name": "H", "size": 32})),
                      "size changed from 16 to 32"),
    "array items narrowed": (rec(f("a", {"type": "array", "items": "long"})),
                             rec(f("a", {"type": "array", "items": "int"})), "a[]"),
    "array made a map": (rec(f("a", {"type": "array", "items": "int"})),
                         rec(f("a", {"type": "map", "values": "int"})),
                         "array<int> cannot be read as map<int>"),
    "nested record gains a required field": (
        rec(f("in", rec(f("a", "int"), name="In"))),
        rec(f("in", rec(f("a", "int"), f("b", "boolean"), name="In"))), "R.in.b: field added"),
    "timestamp precision changed": (
        rec(f("t", {"type": "long", "logicalType": "timestamp-micros"})),
        rec(f("t", {"type": "long", "logicalType": "timestamp-millis"})),
        "logical type changed from timestamp-micros to timestamp-millis"),
}


@pytest.mark.parametrize("writer, reader", COMPATIBLE.values(), ids=COMPATIBLE)
def test_compatible_changes_pass_the_checker_and_read_real_data(
    writer: dict[str, Any], reader: dict[str, Any]
) -> None:
    assert incompatibilities(reader, writer) == []
    _read_generated(writer, reader)  # fastavro agrees: every generated datum reads


@pytest.mark.parametrize("writer, reader, reason", INCOMPATIBLE.values(), ids=INCOMPATIBLE)
def test_incompatible_changes_are_reported_with_the_field(
    writer: dict[str, Any], reader: dict[str, Any], reason: str
) -> None:
    reasons = incompatibilities(reader, writer)
    assert reasons, "the checker accepted an incompatible change"
    assert any(reason in r for r in reasons), reasons


def test_fastavro_itself_refuses_a_field_added_without_a_default() -> None:
    writer, reader, _ = INCOMPATIBLE["field added without a default"]
    with pytest.raises(Exception, match="x"):
        _read_generated(writer, reader)


def test_fastavro_fails_on_bytes_read_as_string_which_the_spec_would_allow() -> None:
    writer, reader, _ = INCOMPATIBLE["bytes read as string"]
    with pytest.raises(UnicodeDecodeError):
        _read_generated(writer, reader)


def test_a_reader_union_takes_the_first_matching_branch() -> None:
    # int matches long before string; a writer string still finds its own branch.
    assert can_read(["null", "long", "string"], ["int", "string"])
    assert not can_read(["null", "boolean"], "int")


def _read_generated(writer: dict[str, Any], reader: dict[str, Any]) -> None:
    w, r = parse_schema(writer, named_schemas={}), parse_schema(reader, named_schemas={})
    for datum in generate_many(w, 50):
        body = io.BytesIO()
        schemaless_writer(body, w, datum)
        body.seek(0)
        schemaless_reader(body, w, r)
