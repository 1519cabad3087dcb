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


SCHEMA = {"type": "object", "required": ["summary", "sources"],
          "properties": {"summary": {"type": "string"}, "sources": {"type": "integer"}}}


def test_asked_for_a_schema_it_answers_json_matching_it_or_a_bad_one_when_told() -> None:
    from jsonschema import validate

    from streams.executors.structured import ask_for, read_answer

    for native in (True, False):
        request = ask_for({"model": "m", "messages": [USER]}, SCHEMA, native)
        good = scripted_reply(request)["choices"][0]["message"]["content"]
        validate(json.loads(good), SCHEMA)
        assert json.loads(good)["summary"].startswith("Research summary on durable timers")
        bad = scripted_reply(request, bad_structured=True)["choices"][0]["message"]["content"]
        assert read_answer(bad, SCHEMA)[1] == "(value): 'summary' is a required property"


def test_through_the_messages_api_it_answers_as_through_chat_completions() -> None:
    from bend.devstack.messages_api import chat_request, messages_reply
    from streams.executors.anthropic import completion_of, messages_request

    messages = [USER]
    for _ in range(3):  # search, fetch, answer
        request = {"model": "m", "messages": messages, "tools": TOOLS}
        direct = scripted_reply(request)
        native = messages_reply(scripted_reply(chat_request(messages_request(request, 100))))
        via = completion_of(native)
        assert via["choices"][0]["message"].get("tool_calls") == \
            direct["choices"][0]["message"].get("tool_calls")
        assert via["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]
        assert via["choices"][0]["finish_reason"] == direct["choices"][0]["finish_reason"]
        assert via["usage"]["prompt_tokens"] == direct["usage"]["prompt_tokens"]
        if direct["choices"][0]["finish_reason"] == "stop":
            break
        result = {"results": [{"url": "u1", "title": "T"}]} if len(messages) == 1 else \
            {"url": "u1", "title": "T", "text": "Timers are events."}
        messages = continued(messages, direct, result)
    assert direct["choices"][0]["finish_reason"] == "stop"
