"""Can a reader schema read data written with a writer schema? The Avro spec's resolution rules.

Follows "Schema Resolution" of the Avro specification: records match by unqualified name or a
reader alias, reader fields missing from the writer need a default, writer fields missing from
the reader are skipped, enums keep the writer's symbols (or have a default), fixed sizes match,
arrays and maps resolve their items and values, int->long->float->double and string->bytes
are promotions, and unions resolve branch by branch (a reader union takes the first branch
that matches). Stricter than the spec in two ways: bytes->string is reported (bytes that are
not UTF-8 fail to read as a string: the spec's promotion breaks on real data), and so is a
changed logical type (timestamp-micros -> timestamp-millis: the bytes decode, their meaning
changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["can_read", "incompatibilities"]

_PRIMITIVES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
}


def incompatibilities(reader: Any, writer: Any) -> list[str]:
    """Why `reader` cannot read data written with `writer`; empty when it can."""
    out: list[str] = []
    _check(_Node.of(reader), _Node.of(writer), _path(reader), set(), out)
    return out


def can_read(reader: Any, writer: Any) -> bool:
    """Whether `reader` can read every datum written with `writer`."""
    return not incompatibilities(reader, writer)


@dataclass(eq=False, slots=True)
class _Node:
    """A schema node with named references resolved to the same object (cycles allowed)."""

    type: str
    name: str = ""  # full name of named types
    aliases: frozenset[str] = frozenset()  # full names
    logical: str = ""
    fields: list[_Field] = field(default_factory=list)
    symbols: tuple[str, ...] = ()
    has_default: bool = False  # enum default
    size: int = 0
    items: _Node | None = None  # array items, map values
    branches: list[_Node] = field(default_factory=list)
    attrs: tuple[Any, ...] = ()  # logical-type parameters (decimal precision, scale)

    @property
    def short(self) -> str:
        """The unqualified name."""
        return self.name.rpartition(".")[2]

    def describe(self) -> str:
        """How the node reads in a reason."""
        if self.type in _NAMED:
            return f"{self.type} {self.short}"
        if self.type == "union":
            return "union[" + ", ".join(b.describe() for b in self.branches) + "]"
        if self.type in ("array", "map") and self.items is not None:
            return f"{self.type}<{self.items.describe()}>"
        return f"{self.type} ({self.logical})" if self.logical else self.type

    @classmethod
    def of(cls, schema: Any) -> _Node:
        """Build the node tree of a self-contained schema."""
        return _build(schema, "", {})


@dataclass(eq=False, slots=True)
class _Field:
    name: str
    aliases: frozenset[str]
    type: _Node
    has_default: bool


def _build(schema: Any, ns: str, names: dict[str, _Node]) -> _Node:
    if isinstance(schema, list):
        return _Node("union", branches=[_build(b, ns, names) for b in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _Node(schema)
        full = schema if "." in schema or not ns else f"{ns}.{schema}"
        if full in names:
            return names[full]
        if schema in names:
            return names[schema]
        raise ValueError(f"schema refers to undefined type {schema!r}")
    kind = schema["type"]
    if isinstance(kind, (dict, list)) or (kind not in _PRIMITIVES and kind not in _NAMED
                                         and kind not in ("array", "map")):
        return _build(kind, ns, names)
    if kind in _PRIMITIVES:
        params = (schema.get("precision"), schema.get("scale"))
        return _Node(kind, logical=schema.get("logicalType", ""), attrs=params)
    if kind == "array":
        return _Node("array", items=_build(schema["items"], ns, names))
    if kind == "map":
        return _Node("map", items=_build(schema["values"], ns, names))
    name = schema["name"]
    full = name if "." in name else (
        f"{schema.get('namespace', ns)}.{name}" if schema.get("namespace", ns) else name
    )
    inner = full.rpartition(".")[0]
    aliases = frozenset(a if "." in a or not inner else f"{inner}.{a}"
                        for a in schema.get("aliases", ()))
    node = _Node("record" if kind == "error" else kind, name=full, aliases=aliases,
                 logical=schema.get("logicalType", ""))
    names[full] = node  # before the fields: a record may refer to itself
    if kind in ("record", "error"):
        node.fields = [
            _Field(f["name"], frozenset(f.get("aliases", ())), _build(f["type"], inner, names),
                   "default" in f)
            for f in schema["fields"]
        ]
    elif kind == "enum":
        node.symbols = tuple(schema["symbols"])
        node.has_default = "default" in schema
    else:
        node.size = int(schema["size"])
    return node


def _path(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return str(schema["name"]).rpartition(".")[2]
    return "<root>"


def _check(r: _Node, w: _Node, path: str, seen: set[tuple[int, int]],
           out: list[str]) -> None:
    key = (id(r), id(w))
    if key in seen:  # recursive types: this pair is already being checked
        return
    seen.add(key)
    if w.type == "union":
        for branch in w.branches:
            _check(r, branch, path, seen, out)
        return
    if r.type == "union":
        match = next((b for b in r.branches if _matches(b, w)), None)
        if match is None:
            out.append(f"{path}: writer's {w.describe()} matches no branch of reader's "
                       f"{r.describe()}")
            return
        _check(match, w, path, seen, out)
        return
    if not _matches(r, w):
        why = " (bytes need not be UTF-8)" if (w.type, r.type) == ("bytes", "string") else ""
        out.append(f"{path}: writer's {w.describe()} cannot be read as {r.describe()}{why}")
        return
    if r.logical != w.logical or r.attrs != w.attrs:
        out.append(f"{path}: logical type changed from {w.logical or 'none'} "
                   f"to {r.logical or 'none'}")
    if r.type == "record":
        _check_record(r, w, path, seen, out)
    elif r.type == "enum":
        lost = [s for s in w.symbols if s not in r.symbols]
        if lost and not r.has_default:
            out.append(f"{path}: enum {r.short} lost symbol(s) {', '.join(lost)} "
                       "and has no default")
    elif r.type == "fixed" and r.size != w.size:
        out.append(f"{path}: fixed {r.short} size changed from {w.size} to {r.size}")
    elif r.type in ("array", "map") and r.items is not None and w.items is not None:
        _check(r.items, w.items, f"{path}[]", seen, out)


def _check_record(r: _Node, w: _Node, path: str, seen: set[tuple[int, int]],
                  out: list[str]) -> None:
    written = {f.name: f for f in w.fields}
    for rf in r.fields:
        wf = written.get(rf.name) or next(
            (written[a] for a in rf.aliases if a in written), None
        )
        if wf is None:
            if not rf.has_default:
                out.append(f"{path}.{rf.name}: field added without a default; old data "
                           "has no value for it")
            continue
        _check(rf.type, wf.type, f"{path}.{rf.name}", seen, out)


def _matches(r: _Node, w: _Node) -> bool:
    """The spec's shallow match: same kind and name, or a permitted promotion."""
    if r.type in _NAMED or w.type in _NAMED:
        return r.type == w.type and (r.short == w.short or w.name in r.aliases
                                     or w.short in {a.rpartition(".")[2] for a in r.aliases})
    if r.type == w.type:
        return True
    return r.type in _PROMOTIONS.get(w.type, ())
