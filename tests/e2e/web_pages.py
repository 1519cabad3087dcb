"""Helpers for the web UI's e2e tests: a signed-in client and an HTML element finder."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx

from bend.server.testing import RunningApi


@dataclass
class Element:
    """A start tag with its attributes, and the text inside it (up to its end tag)."""

    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def inner_text(self) -> str:
        return "".join(self.text)


class _Collector(HTMLParser):
    _VOID = {"input", "br", "meta", "link", "img", "hr", "source", "path", "rect", "line"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs})
        self.found.append(el)
        if tag not in self._VOID:
            self._open.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        for el in self._open:
            el.text.append(data)


class Page:
    """A fetched page's elements, found by tag, id, class and attributes."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.html = response.text
        collector = _Collector()
        collector.feed(self.html)
        self.elements = collector.found

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        """Elements with this tag, class and attributes (`data_step_id` for data-step-id)."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [e for e in self.elements
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
                and all(e.attrs.get(k) == v for k, v in want.items())]

    def by_id(self, element_id: str) -> Element | None:
        """The element with this id."""
        return next((e for e in self.elements if e.attrs.get("id") == element_id), None)

    def csrf(self) -> str:
        """The CSRF token the page's forms carry."""
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', self.html)
        assert found, "no CSRF token on the page"
        return found.group(1)


async def signed_in(api: RunningApi, key: str) -> httpx.AsyncClient:
    """A client of the same app holding a UI session for `key` (no Authorization header)."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app),
                               base_url="http://bend.test", timeout=30)
    r = await client.post("/ui/login", data={"credential": key, "next": "/ui/runs"})
    assert r.status_code == 303, r.text
    return client


async def get_page(client: httpx.AsyncClient, path: str) -> Page:
    """The page at `path`."""
    return Page(await client.get(path))


def ui_pages(app: Any) -> list[tuple[str, list[str]]]:
    """(path template, its path parameters) of every web UI page read by GET, walked from the
    app's routes (included routers under their prefixes)."""
    pages: list[tuple[str, list[str]]] = []

    def walk(routes: Any, prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # an included router: its routes under its prefix
                walk(included.routes, prefix + route.include_context.prefix)
                continue
            path = prefix + getattr(route, "path", "")
            if (path == "/ui" or path.startswith("/ui/")) and "GET" in (
                    getattr(route, "methods", None) or ()):
                pages.append((path, re.findall(r"\{(\w+)(?::\w+)?\}", path)))

    walk(app.routes, "")
    return pages
