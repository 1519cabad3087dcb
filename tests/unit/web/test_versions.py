"""A stored definition as the editor's YAML, and the line diff of two versions."""

from __future__ import annotations

import yaml

from bend.core.definitions import definition_json, load_definition
from bend.web.versions import NEW_WORKFLOW, definition_yaml, diff_lines


def _stored(text: str) -> dict[str, object]:
    return dict(sorted(definition_json(load_definition(text)).items(), key=lambda kv:
                       (len(kv[0]), kv[0])))  # the read model's JSONB order


def test_the_yaml_reads_back_as_the_definition_with_name_first_and_steps_id_first() -> None:
    stored = _stored(NEW_WORKFLOW)
    text = definition_yaml(stored)
    assert text.splitlines()[0] == "name: my-workflow"
    assert "- id: greet" in text
    assert definition_json(load_definition(text)) == definition_json(load_definition(
        NEW_WORKFLOW))


def test_a_changed_line_is_removed_and_added_with_its_line_numbers() -> None:
    old = _stored(NEW_WORKFLOW)
    new = _stored(NEW_WORKFLOW.replace("What this workflow does.", "Greets."))
    lines = diff_lines(old, new)
    assert lines[0].kind == "hunk"
    changed = [(d.kind, d.text, d.old, d.new) for d in lines if d.kind in ("added", "removed")]
    assert changed == [("removed", "description: What this workflow does.", 2, None),
                       ("added", "description: Greets.", None, 2)]
    context = [d for d in lines if d.kind == "context"]
    assert context and all(d.old is not None and d.new is not None for d in context)


def test_equal_versions_have_no_diff_and_an_unparsable_one_is_shown_as_stored() -> None:
    stored = _stored(NEW_WORKFLOW)
    assert diff_lines(stored, stored) == []
    assert yaml.safe_load(definition_yaml({"zeta": 1, "name": 2})) == {"zeta": 1, "name": 2}
