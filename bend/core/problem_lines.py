"""Where each problem of a definition sits in its YAML or JSON text: the line and column of
the key or item its location (`steps[3].inputs.query`) names, found in the text's node tree.

Pure: the text and the problems in, the problems with lines out. A location that goes deeper
than the text (a missing field) points at the deepest part that is there; a syntax error's
`line N, column M` is kept; a text that does not parse puts other problems on line 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bend.core.problems import Problem

__all__ = ["PlacedProblem", "path_of", "place"]

_AT_LINE = re.compile(r"line (\d+), column (\d+)")
_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


@dataclass(frozen=True, slots=True)
class PlacedProblem:
    """A problem with the 1-based line and column it is about."""

    location: str
    message: str
    code: str
    line: int
    column: int


def path_of(location: str) -> list[str | int]:
    """`steps[3].inputs.query` as ["steps", 3, "inputs", "query"] (empty for the document)."""
    if location.startswith("("):  # (document), (value)
        return []
    return [int(index) if index else name for index, name in _PART.findall(location)]


def _key(node: MappingNode, path: Sequence[str | int], at: int) -> tuple[Node, Node, int] | None:
    """The (key, value) of `node` the longest run of names from `path[at]` spells (keys may
    hold dots), and where the path goes on after it; the last of duplicate keys, as YAML
    loads it."""
    for end in range(len(path), at, -1):
        names = path[at:end]
        if not all(isinstance(n, str) for n in names):
            continue
        wanted = ".".join(str(n) for n in names)
        for key, value in reversed(node.value):
            if isinstance(key, ScalarNode) and key.value == wanted:
                return key, value, end
    return None


def _mark(root: Node, path: Sequence[str | int]) -> yaml.Mark:
    """The start of the deepest node of `root` that `path` reaches (a mapping entry: its key)."""
    node, mark, at = root, root.start_mark, 0
    while at < len(path):
        part = path[at]
        if isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark, at = node.start_mark, at + 1
        elif isinstance(node, MappingNode) and isinstance(part, str):
            found = _key(node, path, at)
            if found is None:
                break
            key, node, at = found
            mark = key.start_mark
        else:
            break
    return mark


def place(text: str, problems: Iterable[Problem]) -> list[PlacedProblem]:
    """Each problem with the line and column in `text` it is about, in line order."""
    try:
        root: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        root = None
    placed = []
    for problem in problems:
        line, column = 1, 1
        at = _AT_LINE.fullmatch(problem.location)
        if at:
            line, column = int(at.group(1)), int(at.group(2))
        elif root is not None:
            mark = _mark(root, path_of(problem.location))
            line, column = mark.line + 1, mark.column + 1
        placed.append(PlacedProblem(problem.location, problem.message, problem.code, line,
                                    column))
    return sorted(placed, key=lambda p: (p.line, p.column))
