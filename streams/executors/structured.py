"""Structured output: ask a model for JSON matching a step's output_schema, then read and check it.

OpenAI-compatible endpoints get `response_format` (json_schema) unless their `llm` says
`structured_output: instructions`; other providers get the schema in a system instruction. A
miss is sent back once with what was wrong (`repair_turn`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from bend.core.nodes import schema_problem

__all__ = ["INSTRUCTION", "ask_for", "read_answer", "repair_turn"]

INSTRUCTION = "Answer with only a JSON value matching this JSON Schema, no other text:\n"
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


def ask_for(request: dict[str, Any], schema: dict[str, Any],
            response_format: bool) -> dict[str, Any]:
    """`request` asking for an answer matching `schema`: in `response_format`, else in a system
    instruction."""
    if response_format:
        return {**request, "response_format": {"type": "json_schema", "json_schema": {
            "name": "output", "schema": schema}}}
    instruction = {"role": "system", "content": INSTRUCTION + json.dumps(schema)}
    return {**request, "messages": [instruction, *request.get("messages", [])]}


def read_answer(text: str | None, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """The answer's JSON value and, if it is not JSON or misses the schema, why (`where: what`)."""
    raw = text or ""
    fenced = _FENCE.match(raw)
    try:
        value = json.loads(fenced.group(1) if fenced else raw)
    except ValueError as exc:
        return None, f"(answer): not JSON ({exc}): {raw[:100]!r}"
    return value, schema_problem(schema, value)


def repair_turn(problem: str) -> dict[str, Any]:
    """The user turn that sends a miss back to the model."""
    return {"role": "user", "content": (
        f"Your answer does not match the required JSON Schema: {problem}. Answer again with "
        "only the corrected JSON value.")}
