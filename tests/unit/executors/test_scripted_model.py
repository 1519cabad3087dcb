"""The scripted research model: search, then fetch the first hit, then answer; deterministic."""

from __future__ import annotations

import json

from bend.devstack.llm_server import scripted_reply

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
         for n in ("web_search", "fetch_page")]
USER = {"role": "user", "content": "Research the topic: durable timers"}


def tool_call(reply: dict) -> tuple[str, dict, str]:
    """The reply's single tool call as (name, arguments, id)."""
    (call,) = reply["choices"][0]["message"]["tool_calls"]
    return call["function"]["name"], json.loads(call["function"]["arguments"]), call["id"]


def continued(messages: list, reply: dict, result: dict) -> list:
    """The conversation after running the reply's tool call with `result`."""
    message = reply["choices"][0]["message"]
    return [*messages, message, {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"],
                                 "content": json.dumps(result)}]


def test_the_model_searches_the_users_topic_first() -> None:
    reply = scripted_reply({"model": "m", "messages": [USER], "tools": TOOLS})
    assert tool_call(reply)[:2] == ("web_search", {"query": "durable timers"})
    assert reply["choices"][0]["finish_reason"] == "tool_calls"


def test_after_search_results_it_fetches_the_first_result_then_answers_from_it() -> None:
    messages = [USER]
    first = scripted_reply({"model": "m", "messages": messages, "tools": TOOLS})
    hits = {"results": [{"url": "u1", "title": "Durable timers"}, {"url": "u2", "title": "Sagas"}]}
    messages = continued(messages, first, hits)
    second = scripted_reply({"model": "m", "messages": messages, "tools": TOOLS})
    assert tool_call(second)[:2] == ("fetch_page", {"url": "u1"})
    messages = continued(messages, second, {"url": "u1", "title": "Durable timers",
                                            "text": "Timers are events. They survive crashes."})
    final = scripted_reply({"model": "m", "messages": messages, "tools": TOOLS})
    answer = final["choices"][0]["message"]["content"]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert "Timers are events." in answer and "Further sources: Sagas." in answer


def test_usage_counts_words_of_the_prompt_and_the_completion() -> None:
    reply = scripted_reply({"model": "m", "messages": [USER]})
    content = reply["choices"][0]["message"]["content"]
    assert reply["usage"]["prompt_tokens"] == 5
    assert reply["usage"]["completion_tokens"] == len(content.split())


def test_without_tools_it_answers_at_once() -> None:
    reply = scripted_reply({"model": "m", "messages": [USER]})
    assert "no tools were offered" in reply["choices"][0]["message"]["content"]


def test_an_empty_search_leads_to_an_answer_saying_so() -> None:
    first = scripted_reply({"model": "m", "messages": [USER], "tools": TOOLS})
    final = scripted_reply({"model": "m", "messages": continued([USER], first, {"results": []}),
                            "tools": TOOLS})
    assert "found no sources" in final["choices"][0]["message"]["content"]


def test_the_same_request_gets_the_same_reply() -> None:
    request = {"model": "m", "messages": [USER], "tools": TOOLS}
    assert scripted_reply(request) == scripted_reply(json.loads(json.dumps(request)))
