"""The workflow editor's server side against the real API, engine and projector, as a page without
script uses it: the validate endpoint answers problems at their lines and the step graph; a
refused save keeps the text and lists its problems; saving the same definition makes no version;
the diff page; the start form's JSON box keeps a refused input beside its error."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from bend.devstack.engine import Engine
from bend.server.testing import RunningApi, api_beside
from tests.e2e.web_pages import Page, get_page, signed_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NAME = f"e2e-editor-{uuid.uuid4().hex[:6]}"
GOOD = f"""\
name: {NAME}
steps:
  - id: first
    type: transform
    expression: "'one'"
  - id: second
    type: transform
    expression: steps.first.output
"""
BAD = GOOD.replace("steps.first.output", "steps.missing.output")


@pytest.fixture(scope="module")
async def api(engine: Engine) -> AsyncIterator[RunningApi]:
    async with api_beside(engine.settings) as running:
        yield running


@pytest.fixture(scope="module")
async def editor(api: RunningApi) -> AsyncIterator[httpx.AsyncClient]:
    client = await signed_in(api, await api.key("editor"))
    yield client
    await client.aclose()


async def _csrf(client: httpx.AsyncClient) -> str:
    return (await get_page(client, "/ui/workflows/new")).csrf()


async def test_validate_answers_each_problem_at_its_line_and_the_graph_when_valid(
        editor: httpx.AsyncClient) -> None:
    csrf = await _csrf(editor)
    r = await editor.post("/ui/workflows/validate", data={"csrf_token": csrf, "definition": BAD})
    assert r.status_code == 200, r.text
    verdict = r.json()
    assert verdict["valid"] is False and verdict["graph_html"] is None
    (problem,) = verdict["problems"]
    assert problem["line"] == 8 and problem["location"] == "steps[1].expression"
    assert "missing" in problem["message"]

    r = await editor.post("/ui/workflows/validate", data={"csrf_token": csrf, "definition": GOOD})
    verdict = r.json()
    assert verdict["valid"] is True and verdict["problems"] == [] and verdict["steps"] == 2
    assert 'data-step-id="first"' in verdict["graph_html"]
    assert 'data-from="first" data-to="second"' in verdict["graph_html"]

    r = await editor.post("/ui/workflows/validate", data={"csrf_token": csrf,
                                                          "definition": "name: [\n"})
    (syntax,) = r.json()["problems"]
    assert syntax["code"] == "syntax" and syntax["line"] == 2


async def test_a_refused_save_keeps_the_text_and_an_unchanged_save_makes_no_version(
        api: RunningApi, editor: httpx.AsyncClient) -> None:
    csrf = await _csrf(editor)
    r = await editor.post("/ui/workflows/new", data={"csrf_token": csrf, "definition": BAD})
    assert r.status_code == 422
    page = Page(r)
    area = page.by_id("definition")
    assert area is not None and area.inner_text == BAD
    assert [li.attrs.get("data-line") for li in page.all("li", "problem")] == ["8"]
    listed = await api.client.get("/api/workflows", params={"q": NAME})
    assert listed.json()["items"] == [], "a refused save created a workflow"

    r = await editor.post("/ui/workflows/new", data={"csrf_token": csrf, "definition": GOOD})
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/ui/workflows/([0-9a-f-]{36})\?saved=created", r.headers["location"])
    assert match, r.headers["location"]
    workflow_id = match.group(1)

    edit = await get_page(editor, f"/ui/workflows/{workflow_id}/edit")
    shown = edit.by_id("definition")
    assert shown is not None and shown.inner_text.startswith(f"name: {NAME}\n")
    r = await editor.post(f"/ui/workflows/{workflow_id}/edit",
                          data={"csrf_token": csrf, "definition": shown.inner_text})
    assert r.status_code == 303 and r.headers["location"].endswith("version=1&saved=unchanged")
    r = await editor.post(f"/ui/workflows/{workflow_id}/edit",
                          data={"csrf_token": csrf, "definition": GOOD.replace("'one'", "'uno'")})
    assert r.status_code == 303 and r.headers["location"].endswith("version=2&saved=version")
    detail = (await api.client.get(f"/api/workflows/{workflow_id}")).json()
    assert [v["version"] for v in detail["versions"]] == [1, 2]

    # Another version saved while the editor was open: the save says so and keeps the text;
    # saving again makes the next version.
    seen = await get_page(editor, f"/ui/workflows/{workflow_id}/edit")
    assert [i.attrs.get("value") for i in seen.all("input", name="latest_seen")] == ["2"]
    r = await api.client.put(f"/api/workflows/{workflow_id}", content=GOOD.replace("'one'", "'un'"),
                             headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200 and r.json()["version"] == 3, r.text
    mine = GOOD.replace("'one'", "'eins'")
    r = await editor.post(f"/ui/workflows/{workflow_id}/edit",
                          data={"csrf_token": csrf, "definition": mine, "latest_seen": "2"})
    assert r.status_code == 409
    page = Page(r)
    notice = page.by_id("saved-since")
    assert notice is not None and "Version 3 was saved while you edited" in notice.inner_text
    box = page.by_id("definition")
    assert box is not None and box.inner_text == mine
    assert [i.attrs.get("value") for i in page.all("input", name="latest_seen")] == ["3"]
    r = await editor.post(f"/ui/workflows/{workflow_id}/edit",
                          data={"csrf_token": csrf, "definition": mine, "latest_seen": "3"})
    assert r.status_code == 303 and r.headers["location"].endswith("version=4&saved=version")

    diff = await get_page(editor, f"/ui/workflows/{workflow_id}/diff?old=1&new=2")
    rows = [(tr.attrs.get("data-kind"), tr.inner_text) for tr in diff.all("tr", "diff-line")]
    assert [k for k, _ in rows if k in ("added", "removed")] == ["removed", "added"]
    assert any(k == "added" and "'uno'" in t for k, t in rows), rows

    # A workflow without an input schema takes JSON: a bad one comes back beside its box.
    r = await editor.post(f"/ui/workflows/{workflow_id}/start",
                          data={"csrf_token": csrf, "input": '{"a": ', "idempotency_key": "k1"})
    assert r.status_code == 422
    page = Page(r)
    box = page.by_id("run-input")
    assert box is not None and box.inner_text == '{"a": '
    error = page.by_id("run-input-error")
    assert error is not None and "not JSON" in error.inner_text
    key = page.by_id("idempotency-key")
    assert key is not None and key.attrs.get("value") == "k1"
