"""/api/components on the real stack: the installed components are listed from the start,
versions register once and are immutable, the catalogue is searched by words and tags."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture()
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


def summarise(name: str, version: str = "1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "description": "Summarise a text in a line",
            "tags": ["text", "llm"],
            "input_schema": {"type": "object", "required": ["text"],
                             "properties": {"text": {"type": "string"}}},
            "output_schema": {"type": "string"}, **extra}


async def listed(api: RunningApi, params: dict[str, Any] | None = None,
                 want: set[str] | None = None, timeout_s: float = 20.0) -> dict[str, Any]:
    """The components page, once it names every component in `want`."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = await api.client.get("/api/components", params=params)
        assert r.status_code == 200, r.text
        names = {c["name"] for c in r.json()["items"]}
        if want is None or want <= names:
            return r.json()
        assert time.monotonic() < deadline, f"{want - names} not listed: {r.text}"
        await asyncio.sleep(0.1)


async def test_the_installed_components_are_listed_once_the_api_has_started(
        api: RunningApi) -> None:
    page = await listed(api, want={"web_search", "fetch_page", "noop", "flaky"})
    search = next(c for c in page["items"] if c["name"] == "web_search")
    assert (search["latest_version"], search["versions"]) == ("1", ["1"])
    assert "search" in search["tags"]
    r = await api.client.get("/api/components/web_search/1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ref"] == "web_search@1" and body["registered_by"] == "bend:installed"
    assert body["input_schema"]["required"] == ["query"]


async def test_a_registered_version_reads_back_and_registering_it_again_changes_nothing(
        api: RunningApi) -> None:
    name = f"summarise_{uuid.uuid4().hex[:6]}"
    r = await api.client.post("/api/components", json=summarise(name))
    assert r.status_code == 201, r.text
    assert r.json()["changed"] is True and r.headers["Location"] == f"/api/components/{name}/1"
    # Registration waits for the read model: the version reads back at once.
    got = (await api.client.get(f"/api/components/{name}/1")).json()
    assert got["output_schema"] == {"type": "string"} and got["tags"] == ["text", "llm"]
    again = await api.client.post("/api/components", json=summarise(name))
    assert (again.status_code, again.json()["changed"]) == (200, False), again.text
    r = await api.client.post("/api/components", json=summarise(name, version=2,
                                                                description="Shorter"))
    assert r.status_code == 201, r.text
    detail = (await api.client.get(f"/api/components/{name}")).json()
    assert detail["latest_version"] == "2"
    assert [v["version"] for v in detail["versions"]] == ["1", "2"]


async def test_registering_a_version_again_with_another_body_is_a_conflict(
        api: RunningApi) -> None:
    name = f"summarise_{uuid.uuid4().hex[:6]}"
    assert (await api.client.post("/api/components", json=summarise(name))).status_code == 201
    r = await api.client.post("/api/components", json=summarise(name, tags=["other"]))
    assert r.status_code == 409, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["error"] == "component_version_conflict"
    assert "new version" in problem["detail"] and problem["ref"] == f"{name}@1"
    kept = (await api.client.get(f"/api/components/{name}/1")).json()
    assert kept["tags"] == ["text", "llm"]


@pytest.mark.parametrize(("change", "says"), [
    ({"input_schema": {"type": "object", "properties": {"n": {"type": "integr"}}}},
     "input_schema is not a valid JSON Schema"),
    ({"output_schema": {"type": "string", "minLength": -1}},
     "output_schema is not a valid JSON Schema"),
    ({"input_schema": {"type": "string"}}, 'must describe an object'),
    ({"name": "has space"}, "the name must be"),
    ({"version": "v 1"}, "the version must be"),
    ({"description": "nul\u0000here"}, "description holds a NUL character"),
    ({"input_schema": {"type": "object", "properties": {"a\u0000": {}}}},
     "holds a NUL character"),
])
async def test_a_component_with_a_bad_declaration_is_refused_with_the_reason(
        api: RunningApi, change: dict[str, Any], says: str) -> None:
    r = await api.client.post("/api/components", json={**summarise("bad_one"), **change})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_component" and says in r.json()["detail"], r.text


async def test_the_catalogue_is_searched_by_words_and_tags(api: RunningApi) -> None:
    tag = f"t{uuid.uuid4().hex[:6]}"
    for name, description in (("alpha_translate", "Translate text to French"),
                              ("beta_count", "Count the words of a text")):
        r = await api.client.post("/api/components", json=summarise(
            f"{name}_{tag}", description=description, tags=[tag, "text"]))
        assert r.status_code == 201, r.text
    tagged = await listed(api, {"tag": tag})
    assert [c["name"] for c in tagged["items"]] == [f"alpha_translate_{tag}", f"beta_count_{tag}"]
    words = await listed(api, {"q": "french translate", "tag": tag})
    assert [c["name"] for c in words["items"]] == [f"alpha_translate_{tag}"]
    none = await listed(api, {"tag": [tag, "absent"]})
    assert none["items"] == []
    first = await listed(api, {"tag": tag, "limit": 1})
    assert len(first["items"]) == 1 and first["next_cursor"] == f"alpha_translate_{tag}"
    second = await listed(api, {"tag": tag, "limit": 1, "cursor": first["next_cursor"]})
    assert [c["name"] for c in second["items"]] == [f"beta_count_{tag}"]
    assert second["next_cursor"] is None


async def test_unknown_components_and_versions_are_not_found_with_what_exists(
        api: RunningApi) -> None:
    r = await api.client.get("/api/components/no_such_component")
    assert (r.status_code, r.json()["error"]) == (404, "unknown_component"), r.text
    await listed(api, want={"web_search"})
    r = await api.client.get("/api/components/web_search/9")
    assert (r.status_code, r.json()["error"]) == (404, "unknown_component_version"), r.text
    assert "its versions are 1" in r.json()["detail"]


async def test_a_viewer_reads_the_catalogue_but_cannot_register(api: RunningApi) -> None:
    viewer = api.headers(await api.key("viewer"))
    r = await api.client.post("/api/components", json=summarise("viewer_made"), headers=viewer)
    assert r.status_code == 403, r.text
    r = await api.client.get("/api/components", headers=viewer)
    assert r.status_code == 200, r.text
