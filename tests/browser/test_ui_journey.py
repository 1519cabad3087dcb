"""The web UI's whole day in one browser session, as an admin on the real engine: set a secret,
write a workflow in the editor (fixing the problem the server reports), start it from its form
and see the run send the secret to a local service (masked wherever Bend shows the run), add a
cron trigger whose previewed fire times are the API's, create and revoke a key, and read on the
audit page the entries those actions made."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from bend.devstack.llm_server import ServerHandle, serve_in_background
from tests.browser.conftest import Browser, Stack
from tests.browser.test_ui_editor import _marked_lines, _problems
from tests.browser.test_ui_triggers import _previewed, _retype, _row_ids

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SUFFIX = uuid.uuid4().hex[:8]
NAME = f"journey-{SUFFIX}"
SECRET = f"JOURNEY_TOKEN_{SUFFIX}"
VALUE = f"tok-{uuid.uuid4().hex}"
WRONG_TAIL = ", after: [nowhere]}"


class Greeter:
    """A local service that wants a bearer token and echoes what it got (the token too)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.app = FastAPI()

        @self.app.post("/greet")
        async def greet(request: Request) -> dict[str, Any]:
            auth = request.headers.get("authorization", "")
            self.seen.append(auth)
            body = await request.json()
            return {"greeting": f"hello {body.get('who')}", "auth": auth}


@pytest.fixture(scope="module")
def greeter() -> Iterator[tuple[Greeter, ServerHandle]]:
    service = Greeter()
    handle = serve_in_background(service.app)
    try:
        yield service, handle
    finally:
        handle.stop()


def _lines(url: str) -> list[str]:
    """The definition as typed line by line; its last line waits for a step that is not there."""
    return [
        f"name: {NAME}",
        "description: Greets whoever the form names, through a service that wants a token.",
        "input_schema: {type: object, required: [who], properties: {who: {type: string}}}",
        "steps:",
        f'- {{id: call, type: http, method: POST, url: "{url}/greet", headers: '
        f'{{Authorization: "Bearer {{{{ secrets.{SECRET} }}}}"}}, body: {{who: "${{input.who}}"}}, '
        "retry: {max_attempts: 1}}",
        "- {id: done, type: transform, expression: steps.call.output.body.greeting, "
        "after: [nowhere]}",
    ]


def _audit(browser: Browser, since: str) -> list[list[str | None]]:
    browser.open(f"/ui/audit?since={since}")
    return browser.read("tr.audit-row", "data-action", "data-resource")


def test_a_workflow_is_written_run_with_a_secret_scheduled_and_audited_in_the_browser(
        browser: Browser, stack: Stack, greeter: tuple[Greeter, ServerHandle]) -> None:
    service, handle = greeter
    since = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    browser.sign_in(stack.keys["admin"])

    # A secret, set in the UI for the local service's host only.
    browser.open("/ui/secrets")
    browser.one("#secret-name").send_keys(SECRET)
    browser.one("#secret-value").send_keys(VALUE)
    browser.one("#secret-hosts").send_keys("127.0.0.1")
    browser.one("#save-secret").click()
    browser.wait(lambda: not browser.absent("#secret-saved"), "the saved secret")
    assert VALUE not in browser.driver.page_source

    # The workflow, written in the editor: the server reports the unknown step at its line.
    browser.open("/ui/workflows/new")
    browser.one(".CodeMirror")
    browser.one(".CodeMirror-code").click()
    browser.chord(Keys.CONTROL, "a")
    browser.press(Keys.DELETE)
    lines = _lines(handle.url)
    for line in lines:
        browser.press(line, Keys.ENTER)
    assert browser.driver.execute_script("return window.bendEditor.getValue()") == \
        "\n".join(lines) + "\n"
    browser.wait(lambda: [p[0] for p in _problems(browser)] == ["6"],
                 "the unknown step reported at line 6")
    assert "nowhere" in (_problems(browser)[0][1] or "")
    assert _marked_lines(browser) == [6]
    browser.chord(Keys.CONTROL, Keys.END)
    browser.press(Keys.BACKSPACE, *([Keys.BACKSPACE] * len(WRONG_TAIL)), "}")
    browser.wait(lambda: browser.attr("#problem-summary", "data-count") == "0",
                 "the problem to go once fixed")
    browser.chord(Keys.CONTROL, "s")
    match = browser.wait(lambda: re.fullmatch(r"/ui/workflows/([0-9a-f-]{36})\?saved=created",
                                              browser.path()), "the new workflow's page")
    workflow_id = match.group(1)

    # Started from the form its input schema made; the run sends the secret, shown masked.
    browser.one('input[name="input.who"]').send_keys("Ada")
    browser.one("#start-run").click()
    match = browser.wait(lambda: re.fullmatch(r"/ui/runs/([0-9a-f-]{36})", browser.path()),
                         "the new run's page")
    run_id = match.group(1)
    run = stack.until(run_id, {"completed", "failed", "cancelled"})
    assert run["status"] == "completed", run
    assert service.seen == [f"Bearer {VALUE}"], "the service got the secret's value"
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["done"]["output"] == "hello Ada", steps["done"]
    assert steps["call"]["output"]["body"]["auth"] == "Bearer ***", steps["call"]["output"]
    events = stack.client.get(f"/api/executions/{run_id}/events")
    assert events.status_code == 200 and VALUE not in events.text
    browser.wait(lambda: browser.attr("#run-status", "data-status") == "completed",
                 "the run page to show it completed")
    browser.open(f"/ui/runs/{run_id}")
    assert VALUE not in browser.driver.page_source
    assert "Bearer ***" in browser.driver.page_source, "the echoed token is shown masked"

    # A cron trigger: the five fire times previewed are the ones the API reports once saved.
    browser.open(f"/ui/workflows/{workflow_id}/triggers")
    browser.one("#cron-expr").send_keys("30 8 * * 1-5")
    _retype(browser, "#cron-tz", "America/New_York")
    browser.wait(lambda: len(_previewed(browser)) == 5, "five previewed fire times")
    previewed = _previewed(browser)
    browser.one("#save-cron").click()
    browser.wait(lambda: not browser.absent("#trigger-done"), "the added notice")
    (trigger_id,) = _row_ids(browser, "schedule")
    r = stack.client.get(f"/api/triggers/{trigger_id}/next", params={"count": 5})
    assert r.status_code == 200, r.text
    assert [at.replace("+00:00", "Z") for at in r.json()["items"]] == previewed

    # A key, created (shown once) and revoked.
    browser.open("/ui/keys")
    browser.one("#key-name").send_keys(f"journey bot {SUFFIX}")
    Select(browser.one("#key-role")).select_by_value("viewer")
    browser.one("#create-key").click()
    key = browser.wait(lambda: browser.text("#new-key"), "the new key")
    key_id = browser.text("#new-key-id")
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        assert client.get("/api/workflows", headers={"X-Api-Key": key}).status_code == 200
        browser.open(f"/ui/keys/{key_id}/revoke")
        browser.one("#confirm-revoke").click()
        browser.wait(lambda: not browser.absent("#key-revoked"), "the revoked notice")
        assert client.get("/api/workflows", headers={"X-Api-Key": key}).status_code == 401

    # The audit page lists what the journey did (the read model's entries once projected).
    wanted = {("secret.set", f"secret:{SECRET}"),
              ("workflow.register", f"workflow:{workflow_id}@1"), ("run.request", f"run:{run_id}"),
              ("key.create", f"key:{key_id}"), ("key.revoke", f"key:{key_id}")}

    shown: set[tuple[str | None, str | None]] = set()

    def all_shown() -> bool:
        shown.clear()
        shown.update((a, r) for a, r in _audit(browser, since))
        return wanted <= shown

    deadline = time.monotonic() + 30
    while not all_shown():
        assert time.monotonic() < deadline, f"audit entries missing: {wanted - shown}; {shown}"
        time.sleep(1)
    browser.assert_accessible("the audit page after the journey")
