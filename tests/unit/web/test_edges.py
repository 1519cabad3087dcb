"""Edge roles of a step graph: what the author ordered, data references, membership."""

from __future__ import annotations

from bend.web.edges import AFTER, DATA, MEMBER, edge_roles

DEFINITION = {"name": "w", "steps": [
    {"id": "plan", "type": "transform", "expression": "input"},
    {"id": "fan", "type": "parallel", "branches": [["a", "b"], ["c"]]},
    {"id": "a", "type": "transform", "expression": "steps.plan.output"},
    {"id": "b", "type": "transform", "expression": "'b'"},
    {"id": "c", "type": "transform", "expression": "'c'"},
    {"id": "last", "type": "transform", "expression": "steps.c.output", "after": ["fan"]},
]}


def test_written_after_and_branch_order_are_after_reads_are_data_containment_is_member() -> None:
    roles = edge_roles(DEFINITION, [("fan", "last", "after"), ("a", "b", "after"),
                                    ("plan", "a", "after"), ("c", "last", "after"),
                                    ("fan", "a", "branch:0")])
    assert roles == {("fan", "last"): AFTER, ("a", "b"): AFTER, ("plan", "a"): DATA,
                     ("c", "last"): DATA, ("fan", "a"): MEMBER}


def test_a_definition_that_is_not_a_mapping_leaves_every_dependency_as_data() -> None:
    assert edge_roles(None, [("x", "y", "after"), ("x", "z", "body")]) == {
        ("x", "y"): DATA, ("x", "z"): MEMBER}
