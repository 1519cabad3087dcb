"""A run's start form from its workflow's input schema: a field per property, the input read
back from what was typed, and the server's problems put next to the field they are about.

Pure: the schema and the form's text in, fields, the input and per-field errors out. A schema
that is not an object with properties gets no fields (the page shows one JSON box instead).
Numbers are typed as text, not `<input type=number>`, so what was typed comes back as typed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FormErrors", "InputField", "input_fields", "place_problems", "read_input"]

Kind = Literal["text", "integer", "number", "choice", "json"]
_REQUIRED = re.compile(r"'(.+)' is a required property")
_NAME = re.compile(r"\.([^.\[]+)")


@dataclass(frozen=True, slots=True)
class InputField:
    """One property of the input: its form field `param`, how it is typed, what it offers."""

    name: str
    kind: Kind
    required: bool
    label: str
    description: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (the value as JSON, as shown)
    initial: str = ""

    @property
    def param(self) -> str:
        """The form field's name (prefixed: no property clashes with csrf_token)."""
        return f"input.{self.name}"


@dataclass
class FormErrors:
    """What the server said, by property name, and what belongs to no field."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, name: str | None, message: str) -> None:
        """File `message` under the field `name` (None: the form as a whole)."""
        if name is None:
            self.general.append(message)
        else:
            self.fields.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _field(name: str, prop: Any, required: bool) -> InputField:
    prop = prop if isinstance(prop, Mapping) else {}
    label = str(prop.get("title") or name)
    description = str(prop.get("description") or "")
    default = prop.get("default")
    enum = prop.get("enum")
    kind = prop.get("type")
    if isinstance(enum, list) and enum:
        choices = tuple((json.dumps(v), _shown(v)) for v in enum)
        initial = json.dumps(default) if default is not None else ""
        return InputField(name, "choice", required, label, description, choices, initial)
    if kind == "boolean":
        initial = json.dumps(default) if isinstance(default, bool) else ""
        return InputField(name, "choice", required, label, description,
                          (("true", "true"), ("false", "false")), initial)
    initial = "" if default is None else _shown(default) if kind in (
        "string", "integer", "number") else json.dumps(default, indent=2)
    if kind == "string":
        return InputField(name, "text", required, label, description, initial=initial)
    if kind in ("integer", "number"):
        return InputField(name, kind, required, label, description, initial=initial)
    return InputField(name, "json", required, label, description, initial=initial)


def input_fields(schema: Any) -> tuple[InputField, ...] | None:
    """A field per property of an object schema, in its order; None when it has none."""
    if not isinstance(schema, Mapping) or schema.get("type") not in (None, "object"):
        return None
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return None
    required = set(schema.get("required") or ())
    return tuple(_field(str(name), prop, name in required) for name, prop in props.items())


def _number(kind: Kind, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        if kind == "integer":
            raise ValueError("enter a whole number, such as 3") from None
    try:
        number = float(text)
    except ValueError:
        raise ValueError("enter a number, such as 2.5") from None
    if not math.isfinite(number):
        raise ValueError("enter a finite number")
    return number


def _value(f: InputField, text: str) -> Any:
    if f.kind == "text":
        return text
    if f.kind in ("integer", "number"):
        return _number(f.kind, text.strip())
    if f.kind == "choice":
        if text not in {value for value, _ in f.choices}:
            raise ValueError("choose one of the options")
        return json.loads(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err.msg} at line {err.lineno}, column {err.colno}"
                         ) from None


def read_input(fields: Sequence[InputField], form: Mapping[str, str]
               ) -> tuple[dict[str, Any], FormErrors]:
    """The input the form's fields spell (an empty field is left out), and what cannot be read."""
    value: dict[str, Any] = {}
    errors = FormErrors()
    for f in fields:
        text = form.get(f.param, "")
        if not text.strip():
            continue  # left out: a required one is the schema's to report
        try:
            value[f.name] = _value(f, text)
        except ValueError as err:
            errors.add(f.name, str(err))
    return value, errors


def place_problems(problems: Sequence[tuple[str, str]], fields: Sequence[InputField] | None,
                   root: str = "input") -> FormErrors:
    """The input's problems (`input.who: ...`, `input: 'who' is a required property`) by the
    field they are about; those about no field are the form's."""
    names = {f.name for f in fields or ()}
    errors = FormErrors()
    for where, message in problems:
        rest = where.removeprefix(root) if where.startswith(root) else None
        name = None
        if rest is not None:
            at = _NAME.match(rest)
            missing = _REQUIRED.fullmatch(message)
            name = at.group(1) if at else missing.group(1) if missing and not rest else None
        if name in names:
            errors.add(name, message)
        else:
            errors.add(None, f"{where}: {message}")
    return errors
