"""Example components used by the research workflow: an offline `web_search` and `fetch_page`."""

from __future__ import annotations

import re
from typing import Any

from bend.components.component import Component, component
from bend.components.corpus import CORPUS, pages_by_url
from bend.components.errors import ComponentError

__all__ = ["BUILTIN_COMPONENTS", "PageNotFound", "fetch_page", "web_search"]

_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it",
     "of", "on", "or", "the", "to", "what", "when", "which", "why", "with", "about", "does",
     "do", "into", "its", "this", "that"]
)
_RESULT = {
    "type": "object",
    "required": ["url", "title", "snippet", "score"],
    "properties": {
        "url": {"type": "string"}, "title": {"type": "string"},
        "snippet": {"type": "string"}, "score": {"type": "integer", "minimum": 1},
    },
}


class PageNotFound(ComponentError):
    """`fetch_page` was asked for a URL outside its corpus."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"no page at {url!r}; fetch_page serves only the URLs that web_search returns"
        )
        self.url = url


def _stem(word: str) -> str:
    # Plural and singular match ("breakers" finds "breaker"); crude, but the corpus is tiny.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _terms(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS]


def _first_sentence(text: str) -> str:
    return text.split(". ", 1)[0].rstrip(".") + "."


@component(
    "web_search", "1",
    description="Search the offline corpus of pages on durable event-driven systems.",
    tags=["search", "example"],
    input_schema={
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": {"type": "string", "minLength": 1, "description": "what to look for"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 12, "default": 5},
        },
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["query", "results"],
        "properties": {"query": {"type": "string"},
                       "results": {"type": "array", "items": _RESULT}},
    },
)
def web_search(query: str, limit: int = 5) -> dict[str, Any]:
    """Rank pages by how often the query's words occur (title words count three times)."""
    terms = set(_terms(query))
    scored = []
    for page in CORPUS:
        title, body = _terms(page.title), _terms(page.text)
        score = sum(3 * title.count(t) + body.count(t) for t in terms)
        if score:
            scored.append((-score, page.url, page))
    results = [
        {"url": page.url, "title": page.title, "snippet": _first_sentence(page.text),
         "score": -neg}
        for neg, _url, page in sorted(scored)[:limit]
    ]
    return {"query": query, "results": results}


@component(
    "fetch_page", "1",
    description="Fetch the full text of a corpus page by its URL.",
    tags=["fetch", "example"],
    input_schema={
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string", "minLength": 1}},
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["url", "title", "text"],
        "properties": {"url": {"type": "string"}, "title": {"type": "string"},
                       "text": {"type": "string"}},
    },
)
def fetch_page(url: str) -> dict[str, Any]:
    """The page's title and text; an unknown URL raises `PageNotFound`."""
    page = pages_by_url().get(url)
    if page is None:
        raise PageNotFound(url)
    return {"url": page.url, "title": page.title, "text": page.text}


BUILTIN_COMPONENTS: tuple[Component, ...] = (web_search, fetch_page)
