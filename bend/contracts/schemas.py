"""The Avro schemas of schemas/avro/: loaded once, shared Envelope resolved, fingerprinted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

__all__ = [
    "SCHEMA_DIR", "SchemaInfo", "current_schemas", "expand", "fingerprint_of", "load_folder",
    "parse", "significant",
]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"

_PRIMITIVES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """One record type's schema: as written, expanded (named types inlined), parsed, fingerprint."""

    name: str  # the short name, equal to the Python class name
    fullname: str  # bend.events.StepSucceeded
    expanded: dict[str, Any]
    parsed: dict[str, Any]
    fingerprint: int  # CRC-64-AVRO of the Parsing Canonical Form


def load_folder(folder: Path) -> dict[str, SchemaInfo]:
    """Every record type of `folder` (one .avsc each) keyed by short name; shared types resolved.

    All files go into one named-schemas map first (fastavro's mechanism), so a record may refer
    to `bend.Envelope` by name; a file only referred to by others (Envelope) is not a type itself.
    """
    raw = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.avsc"))}
    by_fullname = {_fullname(s): s for s in raw.values()}
    named: dict[str, Any] = {}
    pending = dict(raw)
    while pending:  # parse in dependency order: a schema whose references are all known first
        progress = False
        for stem, schema in list(pending.items()):
            if _references(schema) <= named.keys() | {_fullname(schema)}:
                parse_schema(schema, named_schemas=named)
                del pending[stem]
                progress = True
        if not progress:
            refs = set().union(*(_references(s) for s in pending.values()))
            missing = sorted(refs - named.keys())
            raise ValueError(f"schemas in {folder} refer to undefined types: {missing}")
    referenced = set().union(*(_references(s) for s in raw.values())) if raw else set()
    out: dict[str, SchemaInfo] = {}
    for stem, schema in raw.items():
        if _fullname(schema) in referenced:
            continue
        out[stem] = _info(stem, expand(schema, by_fullname))
    return out


@lru_cache(maxsize=1)
def current_schemas() -> Mapping[str, SchemaInfo]:
    """The schemas of schemas/avro/, read once per process."""
    return load_folder(SCHEMA_DIR)


def parse(expanded: dict[str, Any]) -> dict[str, Any]:
    """fastavro's parsed form of a self-contained schema."""
    # A record schema parses to a dict; fastavro types the result as any schema's form.
    return cast(dict[str, Any], parse_schema(expanded, named_schemas={}))


def fingerprint_of(expanded: dict[str, Any]) -> int:
    """CRC-64-AVRO fingerprint of a self-contained schema's Parsing Canonical Form."""
    canonical = to_parsing_canonical_form(parse(expanded))
    return int(fingerprint(canonical, "CRC-64-AVRO"), 16)


def significant(schema: Any) -> Any:
    """The schema without `doc` attributes: what a change must be recorded for."""
    if isinstance(schema, dict):
        return {k: significant(v) for k, v in schema.items() if k != "doc"}
    if isinstance(schema, list):
        return [significant(v) for v in schema]
    return schema


def expand(schema: Any, named: Mapping[str, Any], namespace: str = "") -> Any:
    """A copy of `schema` with every reference to a type of `named` inlined at its first use."""
    return _expand(schema, named, namespace, set())


def _expand(schema: Any, named: Mapping[str, Any], namespace: str, seen: set[str]) -> Any:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        full = _qualify(schema, namespace)
        if full in named and full not in seen:
            return _expand(named[full], named, namespace, seen)
        return full  # defined earlier in this schema (or unknown: parsing will say so)
    if isinstance(schema, list):
        return [_expand(s, named, namespace, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        full = _fullname(schema, namespace)
        seen.add(full)
        namespace = full.rpartition(".")[0]
        # Inlined into another namespace, a named type keeps its own by its full name.
        out["name"] = schema["name"].rpartition(".")[2]
        if namespace:
            out["namespace"] = namespace
    if kind in ("record", "error"):
        out["fields"] = [
            {**f, "type": _expand(f["type"], named, namespace, seen)} for f in schema["fields"]
        ]
    elif kind == "array":
        out["items"] = _expand(schema["items"], named, namespace, seen)
    elif kind == "map":
        out["values"] = _expand(schema["values"], named, namespace, seen)
    elif isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES
                                           and kind not in ("enum", "fixed")):
        out["type"] = _expand(kind, named, namespace, seen)
    return out


def _info(stem: str, expanded: dict[str, Any]) -> SchemaInfo:
    fullname = _fullname(expanded)
    if fullname.rpartition(".")[2] != stem:
        raise ValueError(f"{stem}.avsc defines {fullname}; name the file as the record")
    return SchemaInfo(stem, fullname, expanded, parse(expanded), fingerprint_of(expanded))


def _fullname(schema: dict[str, Any], namespace: str = "") -> str:
    name: str = schema["name"]
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _qualify(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _references(schema: Any, namespace: str = "") -> set[str]:
    """Full names of named types `schema` refers to without defining them."""
    defined: set[str] = set()
    used: set[str] = set()

    def walk(s: Any, ns: str) -> None:
        if isinstance(s, str):
            if s not in _PRIMITIVES:
                used.add(_qualify(s, ns))
        elif isinstance(s, list):
            for branch in s:
                walk(branch, ns)
        elif isinstance(s, dict):
            kind = s.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full = _fullname(s, ns)
                defined.add(full)
                ns = full.rpartition(".")[0]
            if kind in ("record", "error"):
                for f in s["fields"]:
                    walk(f["type"], ns)
            elif kind == "array":
                walk(s["items"], ns)
            elif kind == "map":
                walk(s["values"], ns)
            elif kind not in ("enum", "fixed"):
                walk(kind, ns)

    walk(schema, namespace)
    return used - defined
