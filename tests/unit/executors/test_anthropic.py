"""A chat-completions request as an Anthropic Messages request, and a Messages response back."""

from __future__ import annotations

import json

import pytest

from streams.executors.anthropic import completion_of, messages_request
from streams.executors.errors import LlmBadResponse

TOOLS = [{"type": "function", "function": {"name": "web_search", "description": "search",
                                           "parameters": {"type": "object"}}}]


def test_system_turns_tool_calls_and_results_become_messages_blocks() -> None:
    request = {"model": "claude-x", "temperature": 0.2, "tools": TOOLS, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "topic: timers"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function",
             "function": {"name": "web_search", "arguments": '{"query": "timers"}'}},
            {"id": "t2", "type": "function",
             "function": {"name": "web_search", "arguments": '{"query": "sagas"}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": '{"results": []}'},
        {"role": "tool", "tool_call_id": "t2", "content": '{"results": [1]}'},
        {"role": "user", "content": "fix it"},
    ]}
    native = messages_request(request, max_tokens=256)
    assert native["system"] == "be brief"
    assert (native["model"], native["max_tokens"], native["temperature"]) == ("claude-x", 256, 0.2)
    assert native["tools"] == [{"name": "web_search", "description": "search",
                                "input_schema": {"type": "object"}}]
    assert [t["role"] for t in native["messages"]] == ["user", "assistant", "user"]
    assert native["messages"][1]["content"] == [
        {"type": "tool_use", "id": "t1", "name": "web_search", "input": {"query": "timers"}},
        {"type": "tool_use", "id": "t2", "name": "web_search", "input": {"query": "sagas"}}]
    assert native["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": '{"results": []}'},
        {"type": "tool_result", "tool_use_id": "t2", "content": '{"results": [1]}'},
        {"type": "text", "text": "fix it"}]


def test_a_tool_use_response_is_a_completion_with_tool_calls_and_usage() -> None:
    body = {"id": "msg_1", "type": "message", "model": "claude-x", "stop_reason": "tool_use",
            "content": [{"type": "text", "text": "Searching."},
                        {"type": "tool_use", "id": "t1", "name": "web_search",
                         "input": {"query": "timers"}}],
            "usage": {"input_tokens": 12, "output_tokens": 7}}
    completion = completion_of(body)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Searching."
    [call] = choice["message"]["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("t1", "web_search")
    assert json.loads(call["function"]["arguments"]) == {"query": "timers"}
    assert completion["usage"] == {"prompt_tokens": 12, "completion_tokens": 7,
                                   "total_tokens": 19}


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                              ("stop_sequence", "stop")])
def test_stop_reasons_map_to_finish_reasons(stop: str, finish: str) -> None:
    body = {"content": [{"type": "text", "text": "done"}], "stop_reason": stop, "usage": {}}
    choice = completion_of(body)["choices"][0]
    assert choice["finish_reason"] == finish and "tool_calls" not in choice["message"]


def test_a_body_that_is_no_messages_response_is_a_bad_response() -> None:
    with pytest.raises(LlmBadResponse, match="no Messages API response"):
        completion_of({"choices": []})
