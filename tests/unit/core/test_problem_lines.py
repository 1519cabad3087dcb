"""Problems of a definition placed at the line of the key or item their location names."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bend.core.definitions import InvalidDefinition, load_definition
from bend.core.problem_lines import path_of, place
from bend.core.problems import Problem

EDITED = """\
name: editor-demo
input_schema: {type: object, properties: {who: {type: string}}}
steps:
  - id: greet
    type: transform
    mapping: {greeting: input.who}
  - id: nap
    type: delay
  - {id: late, type: transform, expression: "'x'", after: [nowhere]}
"""


def _problems(text: str) -> list[Problem]:
    with pytest.raises(InvalidDefinition) as caught:
        load_definition(text)
    return list(caught.value.problems)


def test_a_location_is_read_as_keys_and_indexes() -> None:
    assert path_of("steps[3].inputs.query") == ["steps", 3, "inputs", "query"]
    assert path_of("steps[0].definition.steps[12].id") == ["steps", 0, "definition", "steps", 12,
                                                           "id"]
    assert path_of("(document)") == []


def test_a_shape_problem_is_placed_at_its_step() -> None:
    placed = place(EDITED, _problems(EDITED))
    assert [(p.location, p.line) for p in placed] == [("steps[1]", 7)]


def test_a_reference_problem_is_placed_at_the_reference_on_its_line() -> None:
    text = EDITED.replace("    type: delay\n", "    type: delay\n    duration: 1s\n")
    (placed,) = place(text, _problems(text))
    assert placed.location == "steps[2].after[0]" and "nowhere" in placed.message
    assert placed.line == 10
    assert text.splitlines()[placed.line - 1][placed.column - 1:].startswith("nowhere")


def test_a_syntax_error_keeps_its_own_line_and_column() -> None:
    text = "name: x\nsteps:\n  - id: [\n"
    (placed,) = place(text, _problems(text))
    assert placed.code == "syntax" and placed.line == 4


def test_json_text_is_placed_too() -> None:
    text = json.dumps({"name": "j", "steps": [{"id": "a", "type": "transform",
                                               "expression": "steps.b.output"}]}, indent=2)
    (placed,) = place(text, _problems(text))
    assert text.splitlines()[placed.line - 1].strip().startswith('"expression"')


def test_a_missing_field_points_at_the_deepest_part_there_and_unparsed_text_at_line_1() -> None:
    (deep,) = place(EDITED, [Problem("steps[0].retry.max_attempts", "too many")])
    assert deep.line == 4  # steps[0] has no retry: its item's first line
    (lost,) = place("a: [", [Problem("steps[0].id", "what")])
    assert (lost.line, lost.column) == (1, 1)


def test_a_key_with_a_dot_is_found_whole() -> None:
    text = "mapping:\n  plain: 1\n  a.b: 2\n"
    (placed,) = place(text, [Problem("mapping.a.b", "bad")])
    assert placed.line == 3


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_STEPS = st.lists(st.dictionaries(_NAMES, st.integers() | _NAMES, min_size=1, max_size=5),
                  min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(_STEPS, st.data())
def test_every_key_of_every_step_is_placed_on_the_line_that_writes_it(
        steps: list[dict[str, object]], data: st.DataObject) -> None:
    text = yaml.safe_dump({"name": "w", "steps": steps}, sort_keys=False,
                          default_flow_style=data.draw(st.booleans()))
    i = data.draw(st.integers(0, len(steps) - 1))
    key = data.draw(st.sampled_from(sorted(steps[i])))
    (placed,) = place(text, [Problem(f"steps[{i}].{key}", "x")])
    written = text.splitlines()[placed.line - 1][placed.column - 1:]
    assert written.lstrip("'\"").startswith(key)  # YAML quotes keys such as 'null'
    (item,) = place(text, [Problem(f"steps[{i}]", "x")])  # ... inside step i's item
    assert (item.line, item.column) <= (placed.line, placed.column)
    if i + 1 < len(steps):
        (after,) = place(text, [Problem(f"steps[{i + 1}]", "x")])
        assert (placed.line, placed.column) < (after.line, after.column)
