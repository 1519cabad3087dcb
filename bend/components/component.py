"""A component: a versioned Python callable with JSON Schemas for its inputs and output."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from bend.components.errors import (
    InvalidComponent, InvalidComponentInput, InvalidComponentOutput,
)

__all__ = ["Component", "ComponentContext", "component", "field_path"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")  # also a valid OpenAI function name
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class ComponentContext:
    """What a component may know about its call; pass `idempotency_key` to side effects."""

    idempotency_key: str = ""
    run_id: str | None = None
    step_id: str | None = None
    attempt: int = 1


def field_path(path: Sequence[Any]) -> str:
    """A readable location inside a JSON value: `'results[0].url'`, or `'(root)'`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"'{text}'" if text else "(root)"


def _first_error(validator: jsonschema.protocols.Validator, value: Any) -> tuple[str, str] | None:
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return field_path(error.absolute_path), error.message


@dataclass(frozen=True, eq=False)
class Component:
    """A registered callable: `await comp.invoke(inputs, context)` validates both ways."""

    name: str
    version: str
    fn: Callable[..., Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    input_schema: Mapping[str, Any] = field(default_factory=lambda: dict(_ANY_OBJECT))
    output_schema: Mapping[str, Any] | None = None
    _inputs: Any = field(init=False, repr=False)
    _output: Any = field(init=False, repr=False)
    _wants_context: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ref = f"{self.name}@{self.version}"
        if not _NAME.fullmatch(self.name):
            raise InvalidComponent(ref, "the name must be letters, digits, `_` or `-` "
                                        "(at most 64, starting with a letter or `_`)")
        if not _VERSION.fullmatch(self.version):
            raise InvalidComponent(ref, "the version must be like `1` or `1.2.0`")
        if self.input_schema.get("type") != "object":
            raise InvalidComponent(ref, 'input_schema must describe an object ("type": "object")')
        validators = []
        for which, schema in (("input_schema", self.input_schema),
                              ("output_schema", self.output_schema or {})):
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise InvalidComponent(ref, f"{which} is not a valid JSON Schema: "
                                            f"{exc.message}") from exc
            validators.append(cls(schema))
        object.__setattr__(self, "_inputs", validators[0])
        object.__setattr__(self, "_output", validators[1])
        object.__setattr__(self, "_wants_context",
                           "context" in inspect.signature(self.fn).parameters)

    @property
    def ref(self) -> str:
        """`name@version`, how workflows name this component."""
        return f"{self.name}@{self.version}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation), as plain Python would."""
        return self.fn(*args, **kwargs)

    def validate_input(self, inputs: Any) -> None:
        """Raise `InvalidComponentInput` naming the first wrong field of `inputs`."""
        problem = _first_error(self._inputs, inputs)
        if problem is not None:
            raise InvalidComponentInput(self.ref, *problem)

    def validate_output(self, output: Any) -> None:
        """Raise `InvalidComponentOutput` if `output` breaks the schema or is not JSON."""
        problem = _first_error(self._output, output)
        if problem is not None:
            raise InvalidComponentOutput(self.ref, *problem)
        try:
            json.dumps(output, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidComponentOutput(self.ref, "(root)", f"not JSON: {exc}") from exc

    async def invoke(self, inputs: Mapping[str, Any],
                     context: ComponentContext | None = None) -> Any:
        """Validate `inputs`, call the function (sync ones in a thread), validate the output."""
        self.validate_input(inputs)
        kwargs = dict(inputs)
        if self._wants_context:
            kwargs["context"] = context or ComponentContext()
        if inspect.iscoroutinefunction(self.fn):
            output = await self.fn(**kwargs)
        else:
            output = await asyncio.to_thread(self.fn, **kwargs)
        self.validate_output(output)
        return output

    def describe(self) -> dict[str, Any]:
        """The component's metadata as JSON (for APIs and catalogues)."""
        return {
            "ref": self.ref, "name": self.name, "version": self.version,
            "description": self.description, "tags": list(self.tags),
            "input_schema": dict(self.input_schema),
            "output_schema": dict(self.output_schema) if self.output_schema else None,
        }


def component(name: str, version: str | int = "1", *, description: str = "",
              tags: Sequence[str] = (), input_schema: Mapping[str, Any] | None = None,
              output_schema: Mapping[str, Any] | None = None,
              ) -> Callable[[Callable[..., Any]], Component]:
    """Declare a function (sync or async) as component `name@version`.

    Inputs arrive as keyword arguments; a parameter named `context` receives a
    `ComponentContext` carrying the step's idempotency key.
    """

    def wrap(fn: Callable[..., Any]) -> Component:
        doc = (inspect.getdoc(fn) or "").split("\n", 1)[0]
        return Component(
            name=name, version=str(version), fn=fn, description=description or doc,
            tags=tuple(tags), input_schema=dict(input_schema or _ANY_OBJECT),
            output_schema=dict(output_schema) if output_schema else None,
        )

    return wrap
