"""bend.sdk: workflows built in Python compile to exactly the YAML form's definition; wrong
references, missing steps and cycles fail when the module is imported, naming file and line."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from bend.core.definitions import definition_hash, parse_definition
from bend.harness import run_workflow
from bend.sdk import (
    DefinitionError, RetryPolicy, SdkError, UnknownField, Workflow, WorkflowNotFound,
    load_workflow,
)
from bend.sdk.load import is_python_target

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_the_python_research_agent_compiles_to_the_yaml_one() -> None:
    from_python = load_workflow(f"{EXAMPLES / 'research_agent.py'}:workflow")
    from_yaml = parse_definition(yaml.safe_load((EXAMPLES / "research_agent.yaml").read_text()))
    assert from_python == from_yaml
    assert definition_hash(from_python) == definition_hash(from_yaml)


def test_every_kind_of_step_compiles_as_its_yaml_does() -> None:
    wf = Workflow("kinds", input_schema={"type": "object"}, timeout="1h")
    items = wf.transform("items", expression="[`1`, `2`]")
    call = wf.http("call", f"https://example.test/{items.output}", method="POST",
                   headers={"X-Id": wf.input.id}, body={"n": items.output}, timeout="5s",
                   retry=RetryPolicy(max_attempts=2))
    each = wf.loop("each", for_each=items.output, body=["double"], concurrency=2)
    wf.transform("double", expression="item")
    gate = wf.approval("gate", message=f"ship {wf.input.id}?", after=[each, call],
                       on_timeout="approve", timeout="1d")
    go = wf.wait("go", "go", payload_schema={"type": "object"}, after=[gate])
    child = Workflow("child")
    child.transform("one", expression="`1`")
    wf.subworkflow("sub", "child", definition=child, input={"from": go.output}, after=[go])
    wf.parallel("both", branches=[["a"], ["b"]], join="first_n", n=1, after=["sub"])
    wf.transform("a", expression="`1`")
    wf.delay("b", duration="1s")
    wf.condition("pick", switch=wf.input.kind, cases={"x": ["on_x"]}, default=["other"],
                 after=["both"])
    wf.transform("on_x", expression="'x'", when="input.flag")
    wf.transform("other", expression="'y'")
    wf.agent("think", model="m", prompt="hi", tools=["web_search@1"],
             llm={"base_url": "http://llm.test/v1"}, after=["pick"])
    yaml_form = yaml.safe_load(textwrap.dedent("""
        name: kinds
        input_schema: {type: object}
        timeout: 1h
        steps:
          - {id: items, type: transform, expression: "[`1`, `2`]"}
          - id: call
            type: http
            method: POST
            url: "https://example.test/${steps.items.output}"
            headers: {X-Id: "${input.id}"}
            body: {n: "${steps.items.output}"}
            timeout: 5s
            retry: {max_attempts: 2}
          - {id: each, type: loop, for_each: steps.items.output, body: [double], concurrency: 2}
          - {id: double, type: transform, expression: item}
          - {id: gate, type: approval, message: "ship ${input.id}?", after: [each, call],
             on_timeout: approve, timeout: 1d}
          - {id: go, type: wait, signal: go, payload_schema: {type: object}, after: [gate]}
          - id: sub
            type: subworkflow
            workflow: child
            definition: {name: child, steps: [{id: one, type: transform, expression: "`1`"}]}
            input: {from: "${steps.go.output}"}
            after: [go]
          - {id: both, type: parallel, branches: [[a], [b]], join: first_n, n: 1, after: [sub]}
          - {id: a, type: transform, expression: "`1`"}
          - {id: b, type: delay, duration: 1s}
          - {id: pick, type: condition, switch: input.kind, cases: {x: [on_x]},
             default: [other], after: [both]}
          - {id: on_x, type: transform, expression: "'x'", when: input.flag}
          - {id: other, type: transform, expression: "'y'"}
          - {id: think, type: agent, model: m, prompt: hi, tools: [web_search@1],
             llm: {base_url: "http://llm.test/v1"}, after: [pick]}
        """))
    assert wf.build() == parse_definition(yaml_form)


def _module(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "flow.py"
    file.write_text("from typing import TypedDict\nfrom bend.sdk import Workflow\n\n"
                    + textwrap.dedent(body))
    return file


def test_a_wrong_output_field_fails_at_import_with_file_and_line(tmp_path: Path) -> None:
    file = _module(tmp_path, """
        class Hits(TypedDict):
            results: list[str]

        wf = Workflow("typo")
        search = wf.tool("search", "web_search@1", inputs={"query": "q"}).returning(Hits)
        wf.tool("read", "fetch_page@1", inputs={"url": search.output["resluts"][0]})
        workflow = wf.build()
        """)
    with pytest.raises(UnknownField) as caught:
        load_workflow(f"{file}:workflow")
    assert (caught.value.file, caught.value.line) == (str(file), 10)
    assert f"{file}:10: step 'search' output has no field 'resluts'; it has results" in str(
        caught.value)


def test_a_missing_step_and_a_cycle_fail_at_build_naming_the_steps_line(tmp_path: Path) -> None:
    file = _module(tmp_path, """
        wf = Workflow("broken")
        wf.transform("a", expression="`1`")
        wf.condition("c", if_="input.x", then=["nowhere"])
        workflow = wf.build()
        """)
    with pytest.raises(DefinitionError) as caught:
        load_workflow(str(file))
    assert (caught.value.file, caught.value.line) == (str(file), 7)
    assert f"{file}:7: step 'c'.then[0]: unknown step 'nowhere'" in str(caught.value)
    wf = Workflow("cycle")
    wf.transform("a", expression="steps.b.output")
    wf.transform("b", expression="steps.a.output")
    with pytest.raises(DefinitionError, match=r"test_sdk\.py:\d+: step '[ab]'.*cycle"):
        wf.build()


def test_a_repeated_id_or_a_field_a_kind_lacks_is_refused_where_it_is_written() -> None:
    wf = Workflow("twice")
    wf.transform("a", expression="`1`")
    with pytest.raises(SdkError, match=r"test_sdk\.py:\d+: a step 'a' exists already"):
        wf.transform("a", expression="`2`")
    with pytest.raises(SdkError, match="takes no colour"):
        wf.delay("d", duration="1s", colour="red")


def test_an_sdk_workflow_runs_in_the_harness() -> None:
    wf = Workflow("chain")
    fetch = wf.tool("fetch", "flaky@1", inputs={"fail_attempts": 1},
                    retry=RetryPolicy(max_attempts=3, initial_interval="1s", jitter=0))
    wf.tool("echo", "noop@1", inputs={"got": fetch.output.attempt})
    failures: list[int] = []

    def flaky(inputs: dict[str, Any]) -> Any:
        if len(failures) < inputs["fail_attempts"]:
            failures.append(1)
            raise RuntimeError("planned")
        return {"attempt": len(failures) + 1}

    result = run_workflow(wf.build(), {}, tools={"flaky": flaky, "noop": lambda i: i})
    assert (result.status, result.output) == ("completed", {"echo": {"got": 2}})


def test_targets_name_a_module_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_python_target("pkg.mod:workflow") and is_python_target("flows/a.py")
    assert not is_python_target("flows/a.yaml") and not is_python_target("-")
    (tmp_path / "myflows.py").write_text(
        "from bend.sdk import Workflow\nwf = Workflow('m')\n"
        "wf.transform('a', expression='`1`')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_workflow("myflows:wf").name == "m"
    with pytest.raises(WorkflowNotFound, match="has no 'nope'"):
        load_workflow("myflows:nope")
    with pytest.raises(WorkflowNotFound, match="no module 'nomodule'"):
        load_workflow("nomodule:wf")
    sys.modules.pop("myflows", None)


def test_the_research_brief_example_compiles_from_python_as_its_yaml_does() -> None:
    from bend.core.nodes import Budget, LlmEndpoint, ModelFallback

    from_yaml = parse_definition(yaml.safe_load((EXAMPLES / "research_brief.yaml").read_text()))
    step = from_yaml.step("research")
    wf = Workflow("research_brief", description=from_yaml.description,
                  input_schema=from_yaml.input_schema, llm=from_yaml.llm,
                  budget=Budget(max_cost_usd=0.5))
    wf.agent(
        "research", model="bend-scripted-researcher", system_prompt=step.system_prompt,
        prompt="Research the topic: ${input.topic}", tools=["web_search@1", "fetch_page@1"],
        max_iterations=6, timeout="3m", output_schema=step.output_schema,
        fallbacks=[ModelFallback(model="claude-3-5-haiku-latest", llm=LlmEndpoint(
            base_url="https://api.anthropic.com/v1", api_key_secret="anthropic_api_key",
            provider="anthropic"))],
        budget={"max_tokens": 20000})
    wf.transform("brief", mapping={
        "topic": "input.topic", "title": "steps.research.output.answer.title",
        "summary": "steps.research.output.answer.summary",
        "answered_by": "steps.research.output.model"})
    wf.output("steps.brief.output")
    built = wf.build()
    assert built == from_yaml
    assert definition_hash(built) == definition_hash(from_yaml)


def test_an_agent_with_mcp_servers_compiles_as_its_yaml_does() -> None:
    wf = Workflow("mcp", input_schema={"type": "object"},
                  llm={"base_url": "http://127.0.0.1:8700/v1"})
    wf.agent("research", model="m", prompt="topic: x", tools=["web_search@1"],
             mcp_servers=["registered", {"name": "glossary", "url": "http://127.0.0.1:8701/mcp",
                                         "tools": ["lookup"]}])
    from_yaml = parse_definition({
        "name": "mcp", "input_schema": {"type": "object"},
        "llm": {"base_url": "http://127.0.0.1:8700/v1"},
        "steps": [{"id": "research", "type": "agent", "model": "m", "prompt": "topic: x",
                   "tools": ["web_search@1"],
                   "mcp_servers": ["registered", {"name": "glossary",
                                                  "url": "http://127.0.0.1:8701/mcp",
                                                  "tools": ["lookup"]}]}]})
    assert definition_hash(wf.build()) == definition_hash(from_yaml)
