"""Tools as plain typed functions: `@tool` makes a versioned component whose input and output
JSON Schemas come from the function's type hints (pydantic models, dataclasses, builtins).

    class Hit(BaseModel):
        url: str
        score: float

    @tool("rank", version="1")
    def rank(urls: list[str], top: int = 3) -> list[Hit]:
        '''Score pages and keep the best.'''

The result is a `bend.components.Component` (register it under the `bend.components` entry
point as any other); a tool step takes it in place of `name@version`, an agent in its `tools`.
Inputs are validated into the hinted types before the call, and the output is dumped to JSON.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from bend.components import Component, ComponentContext, ComponentFailed
from bend.sdk.errors import SdkError

__all__ = ["tool"]


def _site(fn: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(fn, "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code else ("<unknown>", 0)


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    return schema


def tool(name: str, version: str | int = "1", *, description: str = "",
         tags: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Component]:
    """Make the decorated function component `name@version`; every parameter (but an optional
    `context: ComponentContext`) and the return value need type hints."""

    def wrap(fn: Callable[..., Any]) -> Component:
        file, line = _site(fn)
        where = f"tool {name}@{version} ({fn.__qualname__})"
        try:
            hints = get_type_hints(fn)
        except NameError as exc:
            raise SdkError(f"{where}: a type hint names something undefined ({exc})",
                           file, line) from None
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "context"]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise SdkError(f"{where}: *{p.name} cannot be a tool input; name each input",
                               file, line)
        missing = [p.name for p in params if p.name not in hints]
        if "return" not in hints:
            missing.append("the return value")
        if missing:
            raise SdkError(f"{where} has no type hint for {', '.join(missing)}; hint every "
                           "input and the return value (`def f(query: str) -> list[str]`), "
                           "they make its JSON Schemas", file, line)
        inputs: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{name}_inputs", __config__=ConfigDict(extra="forbid"),
            **{p.name: (hints[p.name], ... if p.default is p.empty else p.default)
               for p in params})
        output = TypeAdapter(hints["return"])
        wants_context = "context" in inspect.signature(fn).parameters

        def arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
            context = kwargs.pop("context", None)
            try:
                model = inputs.model_validate(kwargs)
            except ValidationError as exc:
                raise ComponentFailed(f"{name}@{version} inputs: {exc}") from None
            args = {p.name: getattr(model, p.name) for p in params}
            if wants_context:
                args["context"] = context or ComponentContext()
            return args

        if inspect.iscoroutinefunction(fn):
            async def run_async(**kwargs: Any) -> Any:
                return output.dump_python(await fn(**arguments(kwargs)), mode="json")
            runner: Callable[..., Any] = run_async
        else:
            def run(**kwargs: Any) -> Any:
                return output.dump_python(fn(**arguments(kwargs)), mode="json")
            runner = run
        runner.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, default=None)])
        doc = (inspect.getdoc(fn) or "").split("\n", 1)[0]
        return Component(name=name, version=str(version), fn=runner,
                         description=description or doc, tags=tuple(tags),
                         input_schema=_schema(inputs.model_json_schema()),
                         output_schema=_schema(output.json_schema()))

    return wrap
