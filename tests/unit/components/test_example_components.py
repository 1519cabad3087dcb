"""The example components: a deterministic offline search and page fetch."""

from __future__ import annotations

import pytest

from bend.components import InvalidComponentInput
from bend.components.builtin import PageNotFound, fetch_page, web_search
from bend.components.corpus import CORPUS


def test_the_corpus_holds_a_dozen_pages_with_unique_urls() -> None:
    assert len(CORPUS) == 12 and len({p.url for p in CORPUS}) == 12


async def test_search_ranks_the_page_whose_title_matches_first() -> None:
    found = await web_search.invoke({"query": "circuit breakers"})
    assert found["results"][0]["url"].endswith("/circuit-breakers")


async def test_search_is_deterministic_and_respects_the_limit() -> None:
    first = await web_search.invoke({"query": "event log replay", "limit": 3})
    again = await web_search.invoke({"query": "event log replay", "limit": 3})
    assert first == again and len(first["results"]) == 3
    scores = [r["score"] for r in first["results"]]
    assert scores == sorted(scores, reverse=True)


async def test_search_for_an_unrelated_topic_finds_nothing() -> None:
    assert (await web_search.invoke({"query": "zebra migration"}))["results"] == []


async def test_search_without_a_query_is_an_input_error() -> None:
    with pytest.raises(InvalidComponentInput, match="query"):
        await web_search.invoke({})


async def test_fetch_returns_the_text_of_a_search_result() -> None:
    url = (await web_search.invoke({"query": "sagas"}))["results"][0]["url"]
    page = await fetch_page.invoke({"url": url})
    assert page["title"] == "Sagas and compensation" and "compensating" in page["text"]


async def test_fetching_an_unknown_url_raises_a_typed_error() -> None:
    with pytest.raises(PageNotFound, match="only the URLs that web_search returns") as err:
        await fetch_page.invoke({"url": "https://elsewhere.example/x"})
    assert not err.value.retryable and err.value.url == "https://elsewhere.example/x"
