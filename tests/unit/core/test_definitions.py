"""Loading and validating workflow definitions: every kind of problem, with its location."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bend.core.definitions import (
    AgentStep, ConditionStep, InvalidDefinition, WorkflowDefinition, definition_hash,
    definition_json, load_definition, parse_definition, validate,
)
from bend.core.graph import analyze

EXAMPLE = Path(__file__).parents[3] / "examples" / "research_agent.yaml"


def problems_of(text: str) -> list[str]:
    """The problems `load_definition` reports for `text`, as `location: message` strings."""
    with pytest.raises(InvalidDefinition) as info:
        load_definition(text)
    return [str(p) for p in info.value.problems]


def wf(steps: str, extra: str = "") -> str:
    """A workflow document with these steps (YAML, indented by two)."""
    return f"name: t\n{extra}steps:\n{steps}"


def test_the_example_research_workflow_is_valid() -> None:
    defn = load_definition(EXAMPLE.read_text())
    assert validate(defn) == []
    assert {s.type for s in defn.steps} >= {"agent", "tool", "condition", "parallel", "delay"}
    research = defn.step("research")
    assert isinstance(research, AgentStep) and research.tools == ("web_search@1", "fetch_page@1")


def test_dependencies_come_from_after_and_from_what_expressions_read() -> None:
    plan = analyze(load_definition(EXAMPLE.read_text())).plan
    assert plan is not None
    assert set(plan.deps["research"]) == {"pause", "plan", "read_first", "read_second"}
    assert plan.gate["read_first"] == ("read_pages", "branch:0")
    assert plan.gate["nothing_found"] == ("found", "else")
    assert plan.sinks[None] == ("report",)


def test_a_definition_loads_from_json_too() -> None:
    text = json.dumps({"name": "j", "steps": [{"id": "a", "type": "transform",
                                               "expression": "input"}]})
    assert load_definition(text).steps[0].id == "a"


def test_definitions_are_frozen() -> None:
    defn = load_definition(EXAMPLE.read_text())
    with pytest.raises(Exception, match="frozen"):
        defn.name = "other"  # type: ignore[misc]


def test_the_hash_ignores_formatting_and_key_order_but_not_content() -> None:
    a = load_definition(wf("  - {id: a, type: transform, expression: input}\n"))
    b = load_definition('{"steps": [{"expression": "input", "type": "transform", "id": "a"}],'
                        ' "name": "t"}')
    c = load_definition(wf("  - {id: a, type: transform, expression: input.x}\n"))
    assert definition_hash(a) == definition_hash(b) != definition_hash(c)
    assert len(definition_hash(a)) == 64


def test_a_definition_survives_its_json_form_unchanged() -> None:
    defn = load_definition(EXAMPLE.read_text())
    assert parse_definition(definition_json(defn)) == defn


def test_yaml_syntax_errors_name_the_line() -> None:
    [problem] = problems_of("name: t\nsteps: [\n  - {id: a\n")
    assert problem.startswith("line ") and "not valid YAML" in problem


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert problems_of("- just\n- a list\n") == [
        "(document): a workflow definition is a mapping with name and steps, not list"]


def test_an_unknown_step_type_is_named_with_its_location() -> None:
    [problem] = problems_of(wf("  - {id: a, type: transform, expression: input}\n"
                               "  - {id: b, type: teleport}\n"))
    assert problem.startswith("steps[1]: unknown step type 'teleport'; use one of agent")


def test_missing_and_extra_fields_are_named_with_their_location() -> None:
    found = problems_of(wf("  - {id: a, type: tool, inputs: {}, colour: red}\n"))
    assert "steps[0].component: Field required" in found
    assert any(p.startswith("steps[0].colour: Extra inputs") for p in found)


def test_an_unquoted_yaml_boolean_where_a_step_id_belongs_says_to_quote_it() -> None:
    [problem] = problems_of(wf("  - {id: c, type: condition, if: input, then: [yes]}\n"))
    assert problem.startswith("steps[0].then[0]: Input should be a valid string")
    assert "quote it" in problem


def test_a_reference_to_a_missing_step_is_named_with_the_field_and_a_suggestion() -> None:
    found = problems_of(wf(
        "  - {id: search, type: transform, expression: input}\n"
        "  - id: use\n    type: tool\n    component: web_search@1\n"
        "    inputs: {query: '${steps.serch.output}'}\n"))
    assert found == ["steps[1].inputs.query: unknown step 'serch'; did you mean 'search'?"]


def test_after_naming_a_missing_step_is_a_problem() -> None:
    assert problems_of(wf("  - {id: a, type: transform, expression: input, after: [zz]}\n")) == [
        "steps[0].after[0]: unknown step 'zz'"]


def test_duplicate_ids_are_a_problem() -> None:
    found = problems_of(wf("  - {id: a, type: transform, expression: input}\n"
                           "  - {id: a, type: transform, expression: input}\n"))
    assert found == ["steps[1].id: duplicate step id 'a' (steps[0] has it too)"]


def test_a_cycle_is_shown_step_by_step() -> None:
    [problem] = problems_of(wf(
        "  - {id: a, type: transform, expression: steps.c.output}\n"
        "  - {id: b, type: transform, expression: steps.a.output}\n"
        "  - {id: c, type: transform, expression: steps.b.output}\n"))
    assert problem.startswith("steps[0]: dependency cycle: ")
    cycle = problem.split(": ", 2)[2].split(" (")[0].split(" -> ")
    assert set(cycle) == {"a", "b", "c"} and cycle[0] == cycle[-1] and len(cycle) == 4


def test_a_parallel_waiting_for_its_own_branch_is_a_cycle() -> None:
    [problem] = problems_of(wf(
        "  - {id: p, type: parallel, branches: [[x]], after: [x]}\n"
        "  - {id: x, type: transform, expression: input}\n"))
    assert "dependency cycle" in problem and "p (start)" in problem


def test_a_bad_expression_is_named_with_its_field() -> None:
    [problem] = problems_of(wf("  - {id: a, type: condition, if: 'input.[', then: []}\n"))
    assert problem.startswith("steps[0].if: bad expression 'input.['")


def test_an_expression_reading_an_unknown_name_is_a_problem() -> None:
    [problem] = problems_of(wf("  - {id: a, type: transform, expression: inputs.topic}\n"))
    assert problem.startswith("steps[0].expression: step 'a' reads 'inputs'")


def test_item_and_index_are_only_visible_inside_a_loop() -> None:
    [problem] = problems_of(wf("  - {id: a, type: transform, expression: item}\n"))
    assert "reads 'item'" in problem
    load_definition(wf("  - {id: l, type: loop, for_each: input, body: [a]}\n"
                       "  - {id: a, type: transform, expression: '[item, index]'}\n"))


def test_reading_steps_without_naming_one_is_a_problem() -> None:
    [problem] = problems_of(wf("  - {id: a, type: transform, expression: 'steps.*'}\n"))
    assert "without naming a step" in problem


def test_bad_durations_are_named_with_their_field() -> None:
    found = problems_of(wf("  - {id: d, type: delay, duration: soon}\n", extra="timeout: 3x\n"))
    assert sorted(p.split(":")[0] for p in found) == ["steps[0].duration", "timeout"]


def test_branch_lists_naming_missing_steps_are_problems() -> None:
    found = problems_of(wf(
        "  - {id: c, type: condition, if: input, then: [nope], else: [a]}\n"
        "  - {id: p, type: parallel, branches: [[a2], [ghost]]}\n"
        "  - {id: l, type: loop, for_each: input, body: [phantom]}\n"
        "  - {id: a, type: transform, expression: input}\n"
        "  - {id: a2, type: transform, expression: input}\n"))
    assert [p.split(":")[0] for p in found] == [
        "steps[0].then[0]", "steps[1].branches[1][0]", "steps[2].body[0]"]


def test_a_step_in_two_branches_is_a_problem() -> None:
    found = problems_of(wf(
        "  - {id: c, type: condition, if: input, then: [a], else: [a]}\n"
        "  - {id: a, type: transform, expression: input}\n"))
    assert found == ["steps[0].else[0]: step 'a' is already in 'c' (then); a step belongs to "
                     "at most one branch, arm or loop body"]


def test_reading_a_loop_body_step_from_outside_the_loop_is_a_problem() -> None:
    found = problems_of(wf(
        "  - {id: l, type: loop, for_each: input, body: [b]}\n"
        "  - {id: b, type: transform, expression: item}\n"
        "  - {id: z, type: transform, expression: steps.b.output}\n"))
    assert found == ["steps[2]: step 'z' depends on 'b', which runs inside loop 'l'; depend on "
                     "'l' and read its output instead"]


def test_retry_and_timeout_belong_only_to_steps_that_run_outside_the_engine() -> None:
    found = problems_of(wf("  - id: t\n    type: transform\n    expression: input\n"
                           "    retry: {max_attempts: 2}\n    timeout: 5s\n"))
    assert [p.split(":")[0] for p in found] == ["steps[0].retry", "steps[0].timeout"]


def test_an_agent_without_an_llm_endpoint_is_a_problem() -> None:
    found = problems_of(wf("  - {id: a, type: agent, model: m, prompt: hi}\n"))
    assert found == ["steps[0].llm: an agent step needs an llm endpoint; set `llm` on the step "
                     "or on the workflow"]


def test_forms_that_need_exactly_one_of_two_fields_say_so() -> None:
    found = problems_of(wf(
        "  - {id: a, type: transform}\n"
        "  - {id: b, type: condition, if: input, switch: input}\n"
        "  - {id: c, type: delay}\n"
        "  - {id: d, type: loop, body: [a]}\n"
        "  - {id: e, type: parallel, branches: [[a]], join: first_n}\n"))
    assert [p.split(":")[0] for p in found] == [f"steps[{i}]" for i in range(5)]
    assert "exactly one of `expression` or `mapping`" in found[0]
    assert "needs `n`" in found[4]


def test_an_invalid_input_schema_is_a_problem() -> None:
    found = problems_of(wf("  - {id: a, type: transform, expression: input}\n",
                           extra="input_schema: {type: 12}\n"))
    assert len(found) == 1 and found[0].startswith("input_schema: not a valid JSON Schema")


def test_an_inline_child_definition_is_checked_with_its_location() -> None:
    found = problems_of(wf(
        "  - id: child\n    type: subworkflow\n    workflow: w\n    definition:\n"
        "      name: inner\n      steps: [{id: x, type: transform, expression: steps.y.output}]\n"))
    assert found == ["steps[0].definition.steps[0].expression: unknown step 'y'"]


def test_every_semantic_problem_is_reported_at_once() -> None:
    found = problems_of(wf(
        "  - {id: a, type: transform, expression: steps.missing.output}\n"
        "  - {id: b, type: condition, if: 'input.[', then: [ghost]}\n"
        "  - {id: c, type: transform, expression: input, after: [nowhere]}\n"))
    assert len(found) == 4


def test_switch_cases_accept_keys_yaml_reads_as_numbers_or_booleans() -> None:
    defn = load_definition(wf(
        "  - {id: s, type: condition, switch: input.n, cases: {2: [a], true: [b]}}\n"
        "  - {id: a, type: transform, expression: input}\n"
        "  - {id: b, type: transform, expression: input}\n"))
    node = defn.steps[0]
    assert isinstance(node, ConditionStep) and set(node.cases) == {"2", "true"}


def test_parse_definition_takes_json_data_and_refuses_the_wrong_kind() -> None:
    with pytest.raises(InvalidDefinition, match="not NoneType"):
        parse_definition(None)
    assert isinstance(parse_definition(definition_json(load_definition(EXAMPLE.read_text()))),
                      WorkflowDefinition)


def test_an_agent_output_schema_that_is_not_a_json_schema_is_refused_with_the_reason() -> None:
    text = ("name: t\nsteps:\n  - id: a\n    type: agent\n    model: m\n    prompt: hi\n"
            "    llm: {base_url: 'http://127.0.0.1:1/v1'}\n"
            "    output_schema: {type: object, required: yes}\n")
    with pytest.raises(InvalidDefinition) as caught:
        load_definition(text)
    [problem] = caught.value.problems
    assert problem.location == "steps[0].output_schema"
    assert problem.message.startswith("not a valid JSON Schema: True is not of type 'array'")


def test_an_agent_step_takes_an_output_schema_fallbacks_and_a_budget() -> None:
    text = ("name: t\nsteps:\n  - id: a\n    type: agent\n    model: m\n    prompt: hi\n"
            "    llm: {base_url: 'http://127.0.0.1:1/v1'}\n"
            "    output_schema: {type: object, required: [title]}\n"
            "    fallbacks: [m2, {model: claude-x, llm: {base_url: 'http://h/v1', "
            "provider: anthropic}}]\n"
            "    budget: {max_tokens: 5000, max_cost_usd: 0.5}\n")
    step = load_definition(text).steps[0]
    spec = step.task_input({}, None)
    assert spec["output_schema"] == {"type": "object", "required": ["title"]}
    assert spec["fallbacks"] == [
        {"model": "m2"},
        {"model": "claude-x", "llm": {"base_url": "http://h/v1", "api_key_secret": None,
                                      "timeout_s": None, "provider": "anthropic"}}]
    assert spec["budget"] == {"max_tokens": 5000, "max_cost_usd": 0.5}
