"""A streamed answer put back together is the answer a non-streamed call gets, both APIs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bend.devstack.llm_server import scripted_reply
from bend.devstack.messages_api import messages_reply
from bend.security.redact import Redactor
from bend.devstack.streamed_replies import messages_events, openai_chunks, pieces
from streams.executors.anthropic import completion_of
from streams.executors.errors import LlmBadResponse, LlmUnavailable
from streams.executors.streamed import (
    AnthropicAssembly, OpenAiAssembly, sse_data, streaming_request,
)
from streams.executors.tokens import TokenStream

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
         for n in ("web_search", "fetch_page")]
FIRST = {"model": "m", "tools": TOOLS, "messages": [{"role": "user", "content": "topic: sagas"}]}
FINAL = {"model": "m", "messages": [{"role": "user", "content": "topic: sagas"}]}


def completion(content: str | None, calls: list[tuple[str, str]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                  "function": {"name": n, "arguments": a}}
                                 for i, (n, a) in enumerate(calls)]
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
            "model": "m", "choices": [{"index": 0, "message": message,
                                       "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}


def fed_openai(whole: dict[str, Any]) -> tuple[dict[str, Any], str]:
    assembly, text = OpenAiAssembly(), []
    for data in openai_chunks(whole):
        text.append(assembly.feed(data))
    assert assembly.done
    return assembly.result(), "".join(text)


def fed_anthropic(whole: dict[str, Any]) -> tuple[dict[str, Any], str]:
    assembly, text = AnthropicAssembly(), []
    for _, data in messages_events(whole):
        text.append(assembly.feed(data))
    assert assembly.done
    return assembly.result(), "".join(text)


@pytest.mark.parametrize("request_", [FIRST, FINAL])
def test_openai_chunks_assemble_into_the_scripted_completion(request_: dict[str, Any]) -> None:
    whole = scripted_reply(request_)
    assembled, text = fed_openai(whole)
    assert assembled == whole
    assert json.dumps(assembled) == json.dumps(whole)  # same keys in the same order too
    assert text == (whole["choices"][0]["message"]["content"] or "")


@pytest.mark.parametrize("request_", [FIRST, FINAL])
def test_anthropic_events_assemble_into_the_scripted_messages_response(
        request_: dict[str, Any]) -> None:
    whole = messages_reply(scripted_reply(request_))
    assembled, text = fed_anthropic(whole)
    assert json.dumps(assembled) == json.dumps(whole)
    assert completion_of(assembled) == completion_of(whole)
    assert text == "".join(b["text"] for b in whole["content"] if b["type"] == "text")


_TEXT = st.text(min_size=0, max_size=80)
_CALLS = st.lists(st.tuples(st.sampled_from(["web_search", "fetch_page"]),
                            st.dictionaries(st.text(min_size=1, max_size=5), _TEXT,
                                            max_size=3).map(json.dumps)), max_size=3)


@given(content=st.one_of(st.none(), _TEXT.filter(bool)), calls=_CALLS)
def test_any_answer_with_text_and_tool_calls_assembles_whole(
        content: str | None, calls: list[tuple[str, str]]) -> None:
    whole = completion(content, calls)
    assert fed_openai(whole) == (whole, content or "")
    native = messages_reply(whole)
    assembled, text = fed_anthropic(native)
    assert assembled == native
    assert completion_of(assembled) == completion_of(native)
    assert text == (content or "")


@given(_TEXT)
def test_pieces_join_back_into_the_text(text: str) -> None:
    assert "".join(pieces(text)) == text


def test_a_stream_cut_before_its_end_is_retried_not_taken() -> None:
    whole = completion("half an answer", [])
    assembly = OpenAiAssembly()
    for data in openai_chunks(whole)[:3]:
        assembly.feed(data)
    with pytest.raises(LlmUnavailable):
        assembly.result()
    native = AnthropicAssembly()
    for _, data in messages_events(messages_reply(whole))[:3]:
        native.feed(data)
    with pytest.raises(LlmUnavailable):
        native.result()


def test_a_streamed_error_or_garbage_is_a_bad_response() -> None:
    with pytest.raises(LlmBadResponse):
        OpenAiAssembly().feed("not json")
    with pytest.raises(LlmBadResponse):
        OpenAiAssembly().feed('{"error": {"message": "overloaded"}}')
    with pytest.raises(LlmBadResponse):
        AnthropicAssembly().feed('{"type": "error", "error": {"type": "overloaded_error"}}')


def test_streaming_requests_and_sse_lines() -> None:
    assert streaming_request({"model": "m"}, "openai") == {
        "model": "m", "stream": True, "stream_options": {"include_usage": True}}
    assert streaming_request({"model": "m"}, "anthropic") == {"model": "m", "stream": True}
    assert [sse_data(x) for x in ("data: {}", "data:[DONE]", "event: ping", ": beat", "")] == \
        ["{}", "[DONE]", None, None, None]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_text_goes_out_in_batches_by_size_or_age_then_a_final_one() -> None:
    sent: list[tuple[bytes, dict[str, Any]]] = []

    async def sink(key: bytes, value: bytes) -> None:
        sent.append((key, json.loads(value)))

    clock = Clock()
    stream = TokenStream(sink, "run-1", "research", 2, 4, max_chars=10, max_wait_s=0.1,
                         clock=clock)
    await stream.add("abc ")
    await stream.add("def ")
    assert sent == []  # 8 characters, no time passed
    await stream.add("ghi ")  # 12 >= 10
    clock.now = 0.05
    await stream.add("j")
    clock.now = 0.2
    await stream.add("k")  # 0.2 s since the last batch
    await stream.add("l")
    await stream.close()
    assert {k for k, _ in sent} == {b"run-1"}
    assert [(r["seq"], r["text"], r["final"]) for _, r in sent] == [
        (0, "abc def ghi ", False), (1, "jk", False), (2, "l", True)]
    assert {(r["run_id"], r["step_id"], r["attempt"], r["call_index"]) for _, r in sent} == \
        {("run-1", "research", 2, 4)}


async def test_a_failing_side_channel_never_fails_the_call() -> None:
    tries = 0

    async def sink(key: bytes, value: bytes) -> None:
        nonlocal tries
        tries += 1
        raise ConnectionError("broker gone")

    stream = TokenStream(sink, "run-1", "research", 1, 0, max_chars=1)
    await stream.add("a")
    await stream.add("b")
    await stream.close()
    assert tries == 1  # given up on after the first failure


SECRET = "sk-live-0123456789"


@given(text=st.text(alphabet="ab -sk0123456789livex", max_size=60),
       cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8),
       at=st.integers(min_value=0, max_value=60))
async def test_a_secret_never_goes_out_whole_or_in_part_however_the_stream_is_cut(
        text: str, cuts: list[int], at: int) -> None:
    text = text[:at] + SECRET + text[at:]
    sent: list[str] = []

    async def sink(key: bytes, value: bytes) -> None:
        sent.append(json.loads(value)["text"])

    stream = TokenStream(sink, "run-1", "research", 1, 0, max_chars=1,
                         redactor=Redactor([SECRET]))
    edges = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    for start, end in zip(edges, edges[1:], strict=False):
        await stream.add(text[start:end])
    await stream.close()
    out = "".join(sent)
    assert SECRET not in out
    assert out == Redactor([SECRET]).text(text)  # all of it, masked as a whole would be
    for batch in sent[:-1]:  # no batch but the last ends with the secret's start
        assert not any(batch.endswith(SECRET[:k]) for k in range(4, len(SECRET)))


def test_a_safe_cut_keeps_back_what_could_be_a_secrets_start() -> None:
    redactor = Redactor([SECRET])
    assert redactor.safe_cut("the key is sk-li") == len("the key is ")
    assert redactor.safe_cut("the key is sk-live-0123456789 ok") == len(
        "the key is sk-live-0123456789 ok")
    assert Redactor([]).safe_cut("anything s") == len("anything s")
