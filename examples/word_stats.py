"""A typed tool and a workflow using it, written with bend.sdk; tests/unit/sdk/test_tools.py
runs it with bend.harness. Register the tool for the engine under the `bend.components` entry
point (`word_stats = "examples.word_stats:word_count"`) and apply the workflow with
`bend workflows apply examples/word_stats.py:workflow`.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from bend.sdk import RetryPolicy, Workflow, tool


class WordCount(BaseModel):
    """How often the commonest words occur."""

    total: int
    top: list[tuple[str, int]]


@tool("word_count", version="1", tags=["text"])
def word_count(text: str, top: int = 3) -> WordCount:
    """Count the words of a text and keep the commonest."""
    words = [w.strip(".,;:!?").lower() for w in text.split()]
    counted = Counter(w for w in words if w)
    return WordCount(total=sum(counted.values()), top=counted.most_common(top))


wf = Workflow("word_stats", input_schema={"type": "object", "required": ["text"],
                                          "properties": {"text": {"type": "string"}}})
counts = wf.tool("count", word_count, inputs={"text": wf.input.text, "top": 2},
                 retry=RetryPolicy(max_attempts=2)).returning(WordCount)
wf.transform("summary", mapping={"words": counts.output.total,
                                 "commonest": f"{counts.output.top:expr}[0][0]"})

workflow = wf.build()
