"""The run page lists a recorded model call the same whether it spoke OpenAI or Anthropic."""

from __future__ import annotations

from bend.web.runview import _llm_call


def test_an_anthropic_call_shows_its_text_and_tool_use_blocks() -> None:
    shown = _llm_call({"call_index": 0, "model": "claude-x", "provider": "anthropic",
                       "request": {"messages": [{"role": "user", "content": "hi"}]},
                       "response": {"content": [
                           {"type": "text", "text": "Searching."},
                           {"type": "tool_use", "id": "t1", "name": "web_search",
                            "input": {"query": "q"}}]}})
    assert shown["response"] == "Searching."
    assert shown["tool_calls"] == [{"type": "tool_use", "id": "t1", "name": "web_search",
                                    "input": {"query": "q"}}]
    assert shown["prompt"] == [{"role": "user", "content": "hi"}]


def test_an_openai_call_shows_its_message() -> None:
    shown = _llm_call({"response": {"choices": [{"message": {"content": "done"}}]}})
    assert (shown["response"], shown["tool_calls"]) == ("done", [])
