"""@tool: a typed function becomes a versioned component whose JSON Schemas come from its type
hints; a hint missing is refused at the function's line; the harness runs it as the engine's
tool executor would (inputs and output checked)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bend.components import ComponentContext, InvalidComponentInput
from bend.harness import run_workflow
from bend.sdk import SdkError, Workflow, load_workflow, tool

EXAMPLE = Path(__file__).parents[3] / "examples" / "word_stats.py"


@dataclass
class Hit:
    url: str
    score: float


def test_schemas_come_from_the_type_hints_and_the_output_is_json() -> None:
    @tool("rank", version=2)
    def rank(urls: list[str], top: int = 3, context: ComponentContext | None = None) -> list[Hit]:
        """Score pages."""
        assert context is not None and context.step_id == "s"
        return [Hit(u, 1.0 / (i + 1)) for i, u in enumerate(urls[:top])]

    assert (rank.ref, rank.description) == ("rank@2", "Score pages.")
    assert rank.input_schema["required"] == ["urls"]
    assert rank.input_schema["properties"]["top"] == {"default": 3, "title": "Top",
                                                       "type": "integer"}
    assert rank.input_schema["additionalProperties"] is False
    assert rank.output_schema is not None and rank.output_schema["type"] == "array"
    out = asyncio.run(rank.invoke({"urls": ["a", "b"], "top": 1},
                                  ComponentContext(step_id="s")))
    assert out == [{"url": "a", "score": 1.0}]
    with pytest.raises(InvalidComponentInput):
        asyncio.run(rank.invoke({"top": 1}))


def test_a_function_without_hints_is_refused_at_its_line() -> None:
    with pytest.raises(SdkError) as caught:
        @tool("bare")
        def bare(query, limit: int = 3):  # type: ignore[no-untyped-def]
            return []
    assert caught.value.file == __file__
    assert "has no type hint for query, the return value" in str(caught.value)
    line = caught.value.line
    assert Path(__file__).read_text().splitlines()[line - 1].strip().startswith("@tool(\"bare\")")


def test_a_tool_step_and_an_agent_take_the_component() -> None:
    @tool("lookup")
    def lookup(q: str) -> dict[str, Any]:
        return {"q": q}

    wf = Workflow("uses")
    wf.tool("find", lookup, inputs={"q": "x"})
    wf.agent("think", model="m", prompt="p", tools=[lookup, "web_search@1"],
             llm={"base_url": "http://llm.test/v1"})
    steps = wf.to_json()["steps"]
    assert steps[0]["component"] == "lookup@1"
    assert steps[1]["tools"] == ["lookup@1", "web_search@1"]


def test_the_example_with_a_typed_tool_runs_in_the_harness_in_well_under_a_second() -> None:
    spec = importlib.util.spec_from_file_location("word_stats_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    word_count = example.word_count
    began = time.monotonic()
    definition = load_workflow(f"{EXAMPLE}:workflow")
    result = run_workflow(definition, {"text": "the cat and the hat and the bat"},
                          tools=[word_count])
    assert time.monotonic() - began < 1.0
    assert result.status == "completed", result.state.error
    assert result.step_output("count") == {"total": 8, "top": [["the", 3], ["and", 2]]}
    assert result.output == {"summary": {"words": 8, "commonest": "the"}}
    bad = run_workflow(definition, {"text": 7}, tools=[word_count])
    assert bad.status == "failed"
