"""Every page the web UI serves passes axe-core (no serious or critical violation), walked from
the app's routes so a new page cannot be forgotten: each GET route under /ui is opened with
real ids (a run, a workflow, a trigger, a dead letter, a backtest, a secret, a key), signed in as
an admin, plus the sign-in page, the 404 page and the forms showing the server's errors. A route
this walk has no ids for fails it until it is given some."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from bend.web import install_ui
from tests.browser.conftest import Browser, Stack
from tests.browser.test_ui_approvals import GATE
from tests.e2e.web_pages import ui_pages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SUFFIX = uuid.uuid4().hex[:8]
# Routes that are not pages: server-sent event streams the pages read.
NOT_PAGES = {"/ui/runs/stream", "/ui/runs/{run_id}/stream", "/ui/runs/{run_id}/tokens"}


def served_pages() -> list[tuple[str, list[str]]]:
    """Every GET page of the UI as the API process mounts it."""
    app = FastAPI()
    install_ui(app)
    return [(t, ps) for t, ps in ui_pages(app) if t not in NOT_PAGES]


@pytest.fixture(scope="module")
def ids(stack: Stack, example_id: str, example_run: dict[str, Any], schedule: dict[str, Any],
        dead_letter: str) -> dict[str, str]:
    """An id of each kind the UI's paths take, all of the admin's project."""
    secret = f"A11Y_{SUFFIX}"
    r = stack.client.put(f"/api/secrets/{secret}",
                         json={"value": "hidden", "allowed_hosts": ["api.example.com"]})
    assert r.status_code in (200, 201), r.text
    key = stack.client.post("/api/keys", json={"role": "viewer", "name": f"a11y {SUFFIX}"})
    assert key.status_code == 201, key.text
    backtest = stack.client.post("/api/backtests", json={
        "workflow_id": example_id, "step_id": "research", "changes": {"prompt": "Be brief."},
        "run_ids": [example_run["run_id"]]})
    assert backtest.status_code == 202, backtest.text
    waiting = stack.start(stack.register(GATE), {"version": "0.0.1"})  # the inbox has an entry
    stack.until(waiting, {"running"}, step=("ask", "scheduled"))
    return {"workflow_id": example_id, "action": "pause", "run_id": example_run["run_id"],
            "trigger_id": schedule["trigger_id"], "event_id": dead_letter,
            "backtest_id": backtest.json()["backtest_id"], "name": secret,
            "key_id": key.json()["key_id"], "path": "no-such-page"}


def _filled(template: str, params: list[str], ids: dict[str, str]) -> str:
    path = template
    for param in params:
        path = re.sub(r"\{" + param + r"(?::\w+)?\}", ids[param], path)
    return path


def test_every_page_the_ui_serves_passes_axe_core(browser: Browser, stack: Stack,
                                                  ids: dict[str, str]) -> None:
    pages = served_pages()
    unknown = {p for _, params in pages for p in params} - set(ids)
    assert not unknown, f"give this walk an id for these path parameters: {unknown}"
    assert len(pages) >= 25, pages
    browser.sign_in(stack.keys["admin"])
    found: dict[str, Any] = {}
    for template, params in pages:
        path = _filled(template, params, ids)
        browser.open(path)
        browser.one("main")
        if template != "/ui/{path:path}":
            assert "Not found" not in (browser.text("h1") or ""), (template, path)
        if violations := browser.accessibility_violations():
            found[path] = violations
    assert not found, f"pages failing axe-core: {found}"


def test_forms_showing_the_servers_errors_and_results_pass_axe_core(
        browser: Browser, stack: Stack, ids: dict[str, str]) -> None:
    browser.sign_in(stack.keys["admin"])
    found: dict[str, Any] = {}

    def check(what: str) -> None:
        if violations := browser.accessibility_violations():
            found[what] = violations

    browser.open("/ui/secrets")
    browser.one("#save-secret").click()
    browser.wait(lambda: not browser.absent("#secret-name-error"), "the secret form's errors")
    check("the secret form refused")
    browser.open("/ui/keys")
    browser.one("#key-project").clear()
    browser.one("#key-project").send_keys("not a project!")
    browser.one("#create-key").click()
    browser.wait(lambda: not browser.absent("#key-project-error"), "the key form's error")
    check("the key form refused")
    browser.one("#key-project").clear()
    browser.one("#create-key").click()
    browser.wait(lambda: browser.text("#new-key"), "the new key")
    check("the new key, shown once")
    browser.open(f"/ui/workflows/{ids['workflow_id']}")
    browser.one("#start-run").click()  # no topic: refused
    browser.wait(lambda: not browser.absent(".field-error"), "the start form's errors")
    check("the start form refused")
    browser.open("/ui/audit?since=yesterday")
    check("the audit filters refused")

    browser.sign_out_all()
    browser.open("/ui/login")
    check("the sign-in page")
    browser.one("input#api-key").send_keys("bend_not_a_key")
    browser.one("button#sign-in").click()
    browser.wait(lambda: not browser.absent("#login-error"), "the refused sign-in")
    check("the refused sign-in")
    assert not found, f"pages failing axe-core: {found}"
