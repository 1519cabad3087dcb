"""JMESPath expressions and `${...}` templates over plain JSON values: compiled once, never eval'd.

Two forms appear in definitions:
- an *expression* (`if`, `switch`, `when`, `for_each`, `while`, `until`, transform, `output`) is
  plain JMESPath: `steps.search.output.results[0].url`;
- a *template* (tool `inputs`, http `url`/`headers`/`query`/`body`, agent `prompt`, subworkflow
  `input`) is any JSON value whose strings may hold `${ expression }`. A string that is exactly
  one `${...}` becomes the expression's JSON value; otherwise each `${...}` is spliced in as text
  (strings as is, null as "", anything else as compact JSON). `$${` writes a literal `${`.

Expressions read a context `{input, run, steps: {<id>: {output, status}}, item, index, ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from bend.core.errors import BendError

__all__ = [
    "ExpressionError", "as_text", "Names", "compile_expression", "evaluate", "expression_names",
    "render", "template_expressions", "truthy",
]


class ExpressionError(BendError):
    """An expression does not parse, or failed on the data it read."""

    def __init__(self, expression: str, detail: str) -> None:
        super().__init__(f"expression {expression!r}: {detail}; fix it in the workflow definition")
        self.expression = expression
        self.detail = detail


@lru_cache(maxsize=4096)
def compile_expression(expression: str) -> ParsedResult:
    """The compiled JMESPath expression; ExpressionError if it does not parse."""
    if not expression.strip():
        raise ExpressionError(expression, "it is empty")
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ExpressionError(expression, _one_line(exc)) from None
    except RecursionError:  # the parser recurses once per nested parenthesis or bracket
        raise ExpressionError(expression[:80] + "...", "it nests too deeply to parse; "
                              "split it into steps") from None


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """The JSON value `expression` gives on `context`; ExpressionError if it fails."""
    compiled = compile_expression(expression)
    try:
        return compiled.search(context)
    except JMESPathError as exc:
        raise ExpressionError(expression, _one_line(exc)) from None


def truthy(value: Any) -> bool:
    """JMESPath truth: false, null, and empty strings, lists and objects are false."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# --- templates ------------------------------------------------------------------------------


def _split(text: str) -> list[str | tuple[str]]:
    """`text` as literal pieces (str) and expressions (1-tuples); ValueError if a `${` is open."""
    parts: list[str | tuple[str]] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            buf.append("${")
            i += 3
        elif text.startswith("${", i):
            end = _closing(text, i + 2)
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append((text[i + 2:end].strip(),))
            i = end + 1
        else:
            buf.append(text[i])
            i += 1
    if buf:
        parts.append("".join(buf))
    return parts


def _closing(text: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start` (braces and quotes nest)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ValueError(f"template {text!r} has a `${{` that is never closed with `}}`")


@lru_cache(maxsize=4096)
def _parts(text: str) -> tuple[str | tuple[str], ...]:
    return tuple(_split(text))


def template_expressions(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every `(location, expression)` in the template `value`; ExpressionError on a bad `${`."""
    if isinstance(value, str):
        try:
            parts = _parts(value)
        except ValueError as exc:
            raise ExpressionError(value, str(exc)) from None
        for part in parts:
            if isinstance(part, tuple):
                yield path, part[0]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from template_expressions(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from template_expressions(item, f"{path}[{index}]")


def render(value: Any, context: dict[str, Any]) -> Any:
    """The template `value` with each `${...}` evaluated on `context` (a new JSON value)."""
    if isinstance(value, str):
        try:
            parts = _parts(value)
        except ValueError as exc:
            raise ExpressionError(value, str(exc)) from None
        if len(parts) == 1 and isinstance(parts[0], tuple):
            return evaluate(parts[0][0], context)
        if not any(isinstance(p, tuple) for p in parts):
            return "".join(p for p in parts if isinstance(p, str))
        return "".join(p if isinstance(p, str) else as_text(evaluate(p[0], context)) for p in parts)
    if isinstance(value, dict):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item, context) for item in value]
    return value


def as_text(value: Any) -> str:
    """A JSON value as template text: strings as is, null as "", the rest as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# --- what an expression reads ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Names:
    """The top-level names an expression reads, the step ids under `steps`, and loose `steps`."""

    roots: frozenset[str]
    steps: frozenset[str]
    reads_all_steps: bool  # `steps` used without naming a step (`steps.*`, bare `steps`)


@lru_cache(maxsize=4096)
def expression_names(expression: str) -> Names:
    """What `expression` reads from its context; ExpressionError if it does not parse."""
    roots: set[str] = set()
    steps: set[str] = set()
    loose: list[bool] = []
    _walk(compile_expression(expression).parsed, True, roots, steps, loose)
    return Names(frozenset(roots), frozenset(steps), bool(loose))


_LEFT_ROOTED = {"index_expression", "projection", "filter_projection", "value_projection",
                "pipe", "slice"}


def _walk(node: dict[str, Any], at_root: bool, roots: set[str], steps: set[str],
          loose: list[bool]) -> None:
    kind = node.get("type")
    children = node.get("children", [])
    if kind == "field":
        if at_root:
            roots.add(node["value"])
            if node["value"] == "steps":
                loose.append(True)
        return
    if kind == "subexpression":
        head = children[0]
        if at_root and head.get("type") == "field" and head.get("value") == "steps":
            roots.add("steps")
            step = _head_field(children[1])
            if step is None:
                loose.append(True)
            else:
                steps.add(step)
        else:
            _walk(head, at_root, roots, steps, loose)
        for child in children[1:]:
            _walk(child, False, roots, steps, loose)
        return
    if kind in _LEFT_ROOTED:  # only the left side reads the current node; the rest is relative
        if children:
            _walk(children[0], at_root, roots, steps, loose)
        for child in children[1:]:
            _walk(child, False, roots, steps, loose)
        return
    if kind == "expref":
        for child in children:
            _walk(child, False, roots, steps, loose)
        return
    for child in children:
        _walk(child, at_root, roots, steps, loose)


def _head_field(node: dict[str, Any]) -> str | None:
    if node.get("type") == "field":
        return str(node["value"])
    if node.get("type") in ("index_expression", "projection", "filter_projection",
                            "value_projection", "flatten") and node.get("children"):
        return _head_field(node["children"][0])
    return None
