"""The table of node kinds is what every layer reads: its rows agree with the models."""

from __future__ import annotations

import typing

import pytest

from bend.core import definitions
from bend.core.kinds import (
    EXECUTOR_NODE_TYPES, NODE_KINDS, NODE_TYPES, RETRIED_NODE_TYPES, Begin, Members, Runner,
    Wait,
)


def test_each_row_names_the_type_of_its_model() -> None:
    for name, kind in NODE_KINDS.items():
        assert kind.name == name
        (literal,) = typing.get_args(kind.model.model_fields["type"].annotation)
        assert literal == name


def test_a_definition_takes_exactly_the_kinds_of_the_table() -> None:
    union, _field = typing.get_args(definitions.StepDefinition)
    assert set(typing.get_args(union)) == {k.model for k in NODE_KINDS.values()}
    assert definitions.NODE_TYPES == NODE_TYPES
    assert NODE_TYPES == ("agent", "tool", "http", "transform", "condition", "loop", "parallel",
                          "delay", "subworkflow", "approval", "wait")


def test_who_runs_each_kind_and_what_it_waits_on() -> None:
    assert {"agent", "tool", "http"} == EXECUTOR_NODE_TYPES
    assert {"agent", "tool", "http", "subworkflow"} == RETRIED_NODE_TYPES
    assert {k.name for k in NODE_KINDS.values() if k.reported} == RETRIED_NODE_TYPES
    assert NODE_KINDS["subworkflow"].runner is Runner.CHILD_RUN
    assert {k.name for k in NODE_KINDS.values() if k.has_start} == {"parallel", "loop"}
    assert {k.name: k.members for k in NODE_KINDS.values() if k.members} == {
        "condition": Members.ARMS, "parallel": Members.BRANCHES, "loop": Members.BODY}
    assert NODE_KINDS["delay"].begins is Begin.TIMER and NODE_KINDS["delay"].waits_on is Wait.TIMER
    assert {k.name: k.waits_on for k in NODE_KINDS.values() if k.begins is Begin.AWAIT} == {
        "approval": Wait.APPROVAL, "wait": Wait.SIGNAL}
    assert {k.name for k in NODE_KINDS.values() if k.takes_timeout} == {
        *RETRIED_NODE_TYPES, "approval", "wait"}
    for name in EXECUTOR_NODE_TYPES:
        assert NODE_KINDS[name].waits_on is Wait.WORKER
        assert NODE_KINDS[name].begins is Begin.SCHEDULE


def test_each_kind_that_awaits_tells_what_it_waits_for_and_no_other_kind_does() -> None:
    for kind in NODE_KINDS.values():
        if kind.begins is Begin.AWAIT:
            awaited = kind.model.awaited({}, "r1")
            assert awaited.code == kind.waits_on.value and awaited.what in awaited.guide
        else:
            with pytest.raises(ValueError, match="wait for nothing from outside"):
                kind.model.awaited({}, "r1")


def test_an_engine_kind_takes_no_retry_and_the_message_names_those_that_do() -> None:
    defn = definitions.parse_shape({"name": "w", "steps": [
        {"id": "a", "type": "transform", "expression": "input", "retry": {"max_attempts": 2}}]})
    (problem,) = definitions.validate(defn)
    assert problem.message.endswith("(set it on the agent, tool, http or subworkflow steps)")
