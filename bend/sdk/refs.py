"""Typed references to a run's data: `steps.<id>.output...` and `input...` as Python values.

A reference is typed as what it points at (a pydantic model, dataclass or TypedDict), so an IDE
completes its fields and the type checker checks them; at run time reading a field the type
does not have raises UnknownField with the file and line, when the module is imported.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from bend.sdk.errors import UnknownField, caller

__all__ = ["Ref", "expression", "fields_of", "template"]


def fields_of(tp: Any) -> dict[str, Any] | None:
    """Field name -> type of a model, dataclass or TypedDict; None if not one (any field)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {name: f.annotation for name, f in tp.model_fields.items()}
    if (dataclasses.is_dataclass(tp) and isinstance(tp, type)) or typing.is_typeddict(tp):
        try:
            return get_type_hints(tp)
        except NameError:  # a name its module no longer holds: the fields, untyped
            return dict.fromkeys(getattr(tp, "__annotations__", {}), Any)
    return None


def _item_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (list, tuple, typing.Sequence) or (
            isinstance(origin, type) and issubclass(origin, (list, tuple))):
        args = get_args(tp)
        return args[0] if args else Any
    return Any


class Ref:
    """A path into the run's data (`steps.search.output.results[0].url`) and its type."""

    __slots__ = ("_path", "_type", "_where")
    _path: str
    _type: Any
    _where: str

    def __init__(self, path: str, tp: Any = Any, where: str = "") -> None:
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_type", tp)
        object.__setattr__(self, "_where", where or path)

    @property
    def expr(self) -> str:
        """The reference as an expression (`steps.search.output.results`)."""
        return self._path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or not name.isidentifier():
            raise AttributeError(name)
        known = fields_of(self._type)
        if known is not None and name not in known:
            raise UnknownField(self._where, name, sorted(known), *caller())
        return Ref(f"{self._path}.{name}", known[name] if known else Any,
                   f"{self._where}.{name}")

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):  # a TypedDict's field, as the type checker reads it
            return self.__getattr__(key)
        return Ref(f"{self._path}[{key}]", _item_type(self._type), f"{self._where}[{key}]")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("references are read-only")

    def __str__(self) -> str:
        """The reference in a template: `${steps.search.output.results}`."""
        return "${" + self._path + "}"

    def __format__(self, spec: str) -> str:
        return self._path if spec == "expr" else str(self)

    def __repr__(self) -> str:
        return f"Ref({self._path!r})"


def expression(value: Any) -> Any:
    """A field that holds an expression: a Ref becomes its path; text stays as written."""
    if isinstance(value, Ref):
        return value.expr
    return value


def template(value: Any) -> Any:
    """A field that holds a template: a Ref becomes `${path}`, recursively in dicts and lists."""
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, dict):
        return {k: template(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [template(v) for v in value]
    return value
