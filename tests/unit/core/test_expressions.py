"""JMESPath expressions and ${...} templates: evaluation, errors, and what they read."""

from __future__ import annotations

import pytest

from bend.core.expressions import (
    ExpressionError, evaluate, expression_names, render, template_expressions, truthy,
)

CTX = {
    "input": {"topic": "kafka", "n": 2},
    "steps": {"search": {"output": {"results": [{"url": "u1"}, {"url": "u2"}]}}},
}


def test_an_expression_reads_the_context() -> None:
    assert evaluate("steps.search.output.results[1].url", CTX) == "u2"
    assert evaluate("length(steps.search.output.results)", CTX) == 2


def test_a_missing_path_gives_null_rather_than_an_error() -> None:
    assert evaluate("steps.nothing.output.x", CTX) is None


def test_a_bad_expression_raises_a_typed_error_naming_it() -> None:
    with pytest.raises(ExpressionError, match=r"(?i)'steps\.\['.*incomplete.*fix it"):
        evaluate("steps.[", CTX)


def test_a_type_error_on_the_data_raises_a_typed_error() -> None:
    with pytest.raises(ExpressionError, match="length"):
        evaluate("length(input.n)", CTX)


def test_an_expression_cannot_reach_python_attributes() -> None:
    assert evaluate("input.topic.__class__", CTX) is None
    assert evaluate("input.topic.upper", CTX) is None


def test_a_template_that_is_one_expression_keeps_the_json_value() -> None:
    assert render("${steps.search.output.results[*].url}", CTX) == ["u1", "u2"]
    assert render("${input.n}", CTX) == 2


def test_a_template_with_text_splices_values_in_as_text() -> None:
    assert render("about ${input.topic} (${input.n}) ${input.none}!", CTX) == "about kafka (2) !"
    assert render("urls: ${steps.search.output.results[*].url}", CTX) == 'urls: ["u1","u2"]'


def test_templates_render_inside_mappings_and_lists_and_leave_other_values() -> None:
    value = {"q": "${input.topic}", "tags": ["a", "${input.n}"], "limit": 3, "flag": True}
    assert render(value, CTX) == {"q": "kafka", "tags": ["a", 2], "limit": 3, "flag": True}


def test_a_doubled_dollar_writes_a_literal_placeholder() -> None:
    assert render("cost: $${input.n}", CTX) == "cost: ${input.n}"


def test_braces_and_quotes_inside_a_placeholder_do_not_end_it() -> None:
    assert render("${ {t: input.topic} }", CTX) == {"t": "kafka"}
    assert render("${ 'a}b' }", CTX) == "a}b"


def test_an_unclosed_placeholder_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="never closed"):
        list(template_expressions("hello ${input.topic"))


def test_template_expressions_names_where_each_expression_is() -> None:
    found = list(template_expressions({"a": "${x}", "b": ["lit", "p ${y} ${z}"]}))
    assert found == [("a", "x"), ("b[1]", "y"), ("b[1]", "z")]


@pytest.mark.parametrize(("expr", "steps"), [
    ("steps.fetch.output", {"fetch"}),
    ("steps.fetch[0]", {"fetch"}),
    ("steps.a.output || steps.b.output", {"a", "b"}),
    ("length(steps.a.output.items[?x > `1`].y)", {"a"}),
    ("{k: steps.a.output}", {"a"}),
    ("input.items[*].steps.x", set()),  # relative to each item, not the context's steps
    ("input.x | steps.y", set()),  # right of a pipe is relative to the left's result
])
def test_expression_names_finds_the_steps_an_expression_reads(expr: str, steps: set[str]) -> None:
    assert expression_names(expr).steps == steps


def test_expression_names_reports_steps_read_without_a_name() -> None:
    assert expression_names("steps.*").reads_all_steps
    assert expression_names("steps").reads_all_steps
    assert not expression_names("steps.a.output").reads_all_steps


def test_expression_names_lists_the_top_level_names() -> None:
    assert expression_names("input.a && item.b || index").roots == {"input", "item", "index"}


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), (False, False), ("", False), ([], False), ({}, False),
    (0, True), ("x", True), ([0], True), ({"a": None}, True), (True, True),
])
def test_truthiness_follows_jmespath(value: object, expected: bool) -> None:
    assert truthy(value) is expected
