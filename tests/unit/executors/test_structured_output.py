"""Structured output: how a request asks for the schema, how an answer is read and checked."""

from __future__ import annotations

import json

from streams.executors.structured import INSTRUCTION, ask_for, read_answer, repair_turn

SCHEMA = {"type": "object", "required": ["title", "score"],
          "properties": {"title": {"type": "string"}, "score": {"type": "integer"}}}
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "go"}]}


def test_openai_endpoints_get_a_json_schema_response_format() -> None:
    asked = ask_for(REQUEST, SCHEMA, True)
    assert asked["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": SCHEMA}}
    assert asked["messages"] == REQUEST["messages"]


def test_other_providers_and_endpoints_without_it_get_the_schema_as_an_instruction() -> None:
    asked = ask_for(REQUEST, SCHEMA, False)
    assert "response_format" not in asked
    assert asked["messages"][0] == {"role": "system", "content": INSTRUCTION + json.dumps(SCHEMA)}
    assert asked["messages"][1:] == REQUEST["messages"]


def test_a_matching_answer_is_read_even_in_a_code_fence() -> None:
    assert read_answer('{"title": "t", "score": 3}', SCHEMA) == ({"title": "t", "score": 3}, None)
    fenced = '```json\n{"title": "t", "score": 3}\n```'
    assert read_answer(fenced, SCHEMA) == ({"title": "t", "score": 3}, None)


def test_a_miss_names_the_path_and_the_failure() -> None:
    value, problem = read_answer('{"title": "t", "score": "high"}', SCHEMA)
    assert value == {"title": "t", "score": "high"}
    assert problem == "score: 'high' is not of type 'integer'"
    _, missing = read_answer('{"title": "t"}', SCHEMA)
    assert missing == "(value): 'score' is a required property"


def test_an_answer_that_is_not_json_says_so() -> None:
    value, problem = read_answer("Sure! The title is t.", SCHEMA)
    assert value is None and problem is not None and problem.startswith("(answer): not JSON")


def test_the_repair_turn_sends_the_problem_back() -> None:
    turn = repair_turn("score: 'high' is not of type 'integer'")
    assert turn["role"] == "user"
    assert "score: 'high' is not of type 'integer'" in turn["content"]
