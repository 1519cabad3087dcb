"""A workflow's versions as text: a stored definition as the YAML the editor shows, and the
line diff of two versions' YAML.

Pure: definitions in, text and diff lines out. Keys come in the model's order (name,
description, input_schema, steps; each step's id and type first), not the read model's, so the
editor shows what an author writes and two versions differ only where they changed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from bend.core.definitions import InvalidDefinition, definition_json, parse_shape

__all__ = ["DiffLine", "NEW_WORKFLOW", "definition_yaml", "diff_lines"]

NEW_WORKFLOW = """\
# A workflow: its name, its input's JSON Schema and its steps (see the README for every kind).
name: my-workflow
description: What this workflow does.
input_schema:
  type: object
  required: [topic]
  properties:
    topic: {type: string, description: What the run is about}
steps:
  - id: greet
    type: transform
    mapping:
      greeting: input.topic
"""

Kind = Literal["hunk", "context", "added", "removed"]


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a unified diff: its kind, its text, and its line in each version."""

    kind: Kind
    text: str
    old: int | None = None
    new: int | None = None


def _ordered(definition: Any) -> Any:
    """`definition` with its keys in the model's order (as stored if it no longer parses)."""
    try:
        return definition_json(parse_shape(definition))
    except InvalidDefinition:
        return definition


def definition_yaml(definition: Any) -> str:
    """A stored definition as block YAML, keys in the model's order."""
    text: str = yaml.safe_dump(_ordered(definition), sort_keys=False, allow_unicode=True,
                               default_flow_style=False, width=100)
    return text


def diff_lines(old: Any, new: Any, context: int = 3) -> list[DiffLine]:
    """The unified diff of two definitions' YAML, with each line's number in its version."""
    a, b = definition_yaml(old).splitlines(), definition_yaml(new).splitlines()
    lines: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        lines.append(DiffLine("hunk", f"@@ -{first[1] + 1},{last[2] - first[1]} "
                                      f"+{first[3] + 1},{last[4] - first[3]} @@"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [DiffLine("context", a[i], i + 1, j1 + k + 1)
                          for k, i in enumerate(range(i1, i2))]
                continue
            lines += [DiffLine("removed", a[i], old=i + 1) for i in range(i1, i2)]
            lines += [DiffLine("added", b[j], new=j + 1) for j in range(j1, j2)]
    return lines
