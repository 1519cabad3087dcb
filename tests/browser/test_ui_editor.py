"""The workflow editor in real Chromium on the real engine: an editor writes a workflow, sees the
server's problem at its line, fixes it and saves with the keyboard; saves a second version, reads
the diff, starts a run from the form made from the input schema (a refused input keeps what was
typed, the error beside its field) and sees it complete; pauses and deletes it after confirming.
Every page passes axe-core. Viewers see no action, and actions posted by hand get 403 and change
nothing."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import NARROW, WIDE, Browser, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NAME = f"editor-demo-{uuid.uuid4().hex[:6]}"
# Typed line by line at column 0 (the editor keeps the previous line's indentation); the last
# line waits for a step that does not exist.
BAD = [
    f"name: {NAME}",
    "description: Greets whoever the form names.",
    "input_schema: {type: object, required: [who], properties: {who: {type: string, "
    "minLength: 2}}}",
    "steps:",
    "- {id: greet, type: transform, mapping: {greeting: input.who}}",
    "- {id: shout, type: transform, expression: steps.greet.output, after: [nowhere]}",
]
WRONG_TAIL = ", after: [nowhere]}"


@pytest.fixture(scope="module")
def editor_key(stack: Stack) -> str:
    """A key with the editor role (authors workflows, runs them)."""
    r = stack.client.post("/api/keys", json={"role": "editor", "name": "browser editor"})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _focus_and_enter(browser: Browser, css: str) -> None:
    """Focus `css` and press Enter: the keyboard's way to follow a link or press a button."""
    browser.driver.execute_script("document.querySelector(arguments[0]).focus()", css)
    assert browser.driver.execute_script(
        "return document.activeElement === document.querySelector(arguments[0])", css), css
    browser.press(Keys.ENTER)


def _problems(browser: Browser) -> list[list[str | None]]:
    return browser.read("#problems li.problem", "data-line", "text")


def _marked_lines(browser: Browser) -> list[int]:
    """Lines (1-based) the editor marks in its problem gutter."""
    return browser.driver.execute_script(
        "const cm = window.bendEditor, lines = [];"
        "for (let i = 0; i < cm.lineCount(); i++) {"
        "  const info = cm.lineInfo(i);"
        "  if (info.gutterMarkers && info.gutterMarkers['problem-gutter']) lines.push(i + 1); }"
        "return lines;")


def _workflow(stack: Stack, workflow_id: str) -> dict[str, Any]:
    r = stack.client.get(f"/api/workflows/{workflow_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_workflow_is_written_fixed_saved_versioned_compared_run_and_retired_in_the_browser(
        browser: Browser, stack: Stack, editor_key: str) -> None:
    browser.sign_in(editor_key)
    browser.open("/ui/workflows")
    _focus_and_enter(browser, "a#new-workflow")
    browser.wait(lambda: browser.path() == "/ui/workflows/new", "the editor")
    browser.one(".CodeMirror")
    browser.wait(lambda: browser.attr("#problem-summary", "data-count") == "0",
                 "the example to have no problems")
    browser.assert_accessible("the editor")

    # Type a definition with a mistake: the server's problem shows at its line.
    browser.one(".CodeMirror-code").click()
    browser.chord(Keys.CONTROL, "a")
    browser.press(Keys.DELETE)
    for line in BAD:
        browser.press(line, Keys.ENTER)
    assert browser.driver.execute_script("return window.bendEditor.getValue()") == \
        "\n".join(BAD) + "\n"
    browser.wait(lambda: [p[0] for p in _problems(browser)] == ["6"],
                 "the unknown step reported at line 6")
    (problem,) = _problems(browser)
    assert "nowhere" in (problem[1] or ""), problem
    assert _marked_lines(browser) == [6]
    assert browser.text("#problem-summary") == "1 problem: fix it to save."
    browser.assert_accessible("the editor showing a problem")

    # Fix it from the keyboard; the problem goes and the graph is drawn beside.
    browser.chord(Keys.CONTROL, Keys.END)
    browser.press(Keys.BACKSPACE)  # the last newline
    browser.press(*([Keys.BACKSPACE] * len(WRONG_TAIL)), "}")
    browser.wait(lambda: browser.attr("#problem-summary", "data-count") == "0",
                 "the problem to go once fixed")
    assert _marked_lines(browser) == [] and _problems(browser) == []
    browser.wait(lambda: len(browser.all('#editor-graph g.graph-node')) == 2, "the step graph")
    assert browser.read("#editor-graph path.graph-edge", "data-from", "data-to") == \
        [["greet", "shout"]]
    browser.screenshot("editor")

    # Save with the keyboard (focus is still in the editor).
    browser.chord(Keys.CONTROL, "s")
    match = browser.wait(lambda: re.fullmatch(r"/ui/workflows/([0-9a-f-]{36})\?saved=created",
                                              browser.path()), "the new workflow's page")
    workflow_id = match.group(1)
    assert "created at version 1" in (browser.text("#saved-notice") or "")
    saved = _workflow(stack, workflow_id)
    assert saved["name"] == NAME and saved["latest_version"] == 1
    assert [s["id"] for s in saved["definition"]["steps"]] == ["greet", "shout"]
    browser.assert_accessible("the workflow page")

    # A second version: edit the description, leave the editor with Esc then Tab, press Save.
    _focus_and_enter(browser, "a#action-edit")
    browser.wait(lambda: browser.path() == f"/ui/workflows/{workflow_id}/edit", "the editor")
    browser.one(".CodeMirror-code").click()
    line = browser.driver.execute_script("return window.bendEditor.getLine(1)")
    assert line == "description: Greets whoever the form names.", line
    browser.chord(Keys.CONTROL, Keys.HOME)
    browser.press(Keys.DOWN, Keys.END)
    browser.press(*([Keys.BACKSPACE] * len("names.")), "names, politely.")
    browser.wait(lambda: browser.attr("#problem-summary", "data-count") == "0"
                 and browser.driver.execute_script(
                     "return document.getElementById('editor-form').dataset.checked") is not None,
                 "the edited definition checked")
    browser.press(Keys.ESCAPE, Keys.TAB)
    assert browser.driver.execute_script("return document.activeElement.id") == "save", \
        "Esc then Tab does not leave the editor for the save button"
    browser.press(Keys.ENTER)
    browser.wait(lambda: browser.path() == f"/ui/workflows/{workflow_id}?version=2&saved=version",
                 "version 2 saved")
    assert _workflow(stack, workflow_id)["latest_version"] == 2
    assert browser.read("#version-table tr.version-row", "data-version") == [["2"], ["1"]]

    # The diff of the two versions.
    _focus_and_enter(browser, "a#saved-diff")
    browser.wait(lambda: browser.path().startswith(f"/ui/workflows/{workflow_id}/diff"),
                 "the diff page")
    changed = browser.read("#version-diff tr.diff-line", "data-kind", "text")
    removed = [t for k, t in changed if k == "removed"]
    added = [t for k, t in changed if k == "added"]
    assert len(removed) == 1 and "description: Greets whoever the form names." in (removed[0]
                                                                                   or "")
    assert len(added) == 1 and "names, politely." in (added[0] or "")
    browser.assert_accessible("the version diff")
    browser.screenshot("workflow-diff")

    # Start a run from the form the input schema makes: a refused input keeps what was typed.
    browser.open(f"/ui/workflows/{workflow_id}")
    who = browser.one('input[name="input.who"]')
    who.send_keys("A")
    browser.one("input#idempotency-key").send_keys(f"{NAME}-run")
    browser.one("button#start-run").click()
    browser.wait(lambda: not browser.absent('.input-field[data-name="who"] .field-error'),
                 "the server's error beside the field")
    assert "too short" in (browser.text('.input-field[data-name="who"] .field-error') or "")
    assert browser.attr('input[name="input.who"]', "value") == "A"
    assert browser.attr('input[name="input.who"]', "aria-invalid") == "true"
    assert browser.attr("input#idempotency-key", "value") == f"{NAME}-run"
    browser.assert_accessible("the start form showing an error")
    browser.screenshot("workflow-start-refused", max_height=1400)
    runs = stack.client.get("/api/executions", params={"workflow_id": workflow_id}).json()
    assert runs["items"] == [], "a refused input started a run"

    who = browser.one('input[name="input.who"]')
    who.send_keys("da")
    browser.one("button#start-run").click()
    match = browser.wait(lambda: re.fullmatch(r"/ui/runs/([0-9a-f-]{36})", browser.path()),
                         "the new run's page")
    run = stack.until(match.group(1), {"completed", "failed", "cancelled"})
    assert run["status"] == "completed", run
    assert run["workflow_version"] == 2 and run["input"] == {"who": "Ada"}
    browser.wait(lambda: browser.attr("#run-status", "data-status") == "completed",
                 "the run page to show it completed")

    # On a phone-sized screen no page of the editor scrolls sideways.
    browser.set_width(NARROW)
    try:
        wide = {}
        for path in (f"/ui/workflows/{workflow_id}/edit", f"/ui/workflows/{workflow_id}",
                     f"/ui/workflows/{workflow_id}/diff", f"/ui/workflows/{workflow_id}/status/pause"):
            browser.open(path)
            browser.one("main")
            scroll, client = browser.driver.execute_script(
                "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];")
            if scroll > client:
                wide[path] = (scroll, client)
        assert wide == {}, f"pages wider than the {NARROW[0]} px window (scroll, client): {wide}"
    finally:
        browser.set_width(WIDE)

    # Pause, then delete, each after its confirmation page, from the keyboard.
    browser.open(f"/ui/workflows/{workflow_id}")
    _focus_and_enter(browser, "a#action-pause")
    browser.wait(lambda: not browser.absent("#confirm-action"), "the confirmation page")
    browser.assert_accessible("the confirmation page")
    assert _workflow(stack, workflow_id)["status"] == "active", "paused before confirming"
    _focus_and_enter(browser, "#confirm-action")
    browser.wait(lambda: browser.path().endswith("saved=pause"), "the workflow paused")
    assert _workflow(stack, workflow_id)["status"] == "paused"
    assert not browser.absent("a#action-activate")
    _focus_and_enter(browser, "a#action-delete")
    browser.one("#confirm-cancel")
    _focus_and_enter(browser, "#confirm-cancel")  # changing one's mind changes nothing
    browser.wait(lambda: browser.path() == f"/ui/workflows/{workflow_id}", "back, undeleted")
    assert _workflow(stack, workflow_id)["status"] == "paused"
    _focus_and_enter(browser, "a#action-delete")
    browser.one("#confirm-action")
    _focus_and_enter(browser, "#confirm-action")
    browser.wait(lambda: browser.path().endswith("saved=delete"), "the workflow deleted")
    assert _workflow(stack, workflow_id)["status"] == "deleted"
    assert browser.absent("a#action-edit") and browser.absent("form#action-start")


_POST = """
const [url, fields, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
fetch(url, {method: "POST", body: new URLSearchParams(fields), credentials: "same-origin",
            redirect: "manual"})
  .then((r) => done(r.status)).catch((e) => done(String(e)));
"""

ROLE_TARGET: dict[str, Any] = {
    "name": "editor-role-target",
    "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    "steps": [{"id": "one", "type": "transform", "expression": "input.n"}],
}


def _post(browser: Browser, path: str, fields: dict[str, str]) -> Any:
    return browser.driver.execute_async_script(_POST, path, fields)


def test_viewers_see_no_action_and_forbidden_actions_posted_by_hand_change_nothing(
        browser: Browser, stack: Stack, editor_key: str) -> None:
    workflow_id = stack.register(ROLE_TARGET)
    before = _workflow(stack, workflow_id)
    definition = "name: sneaky\nsteps:\n  - {id: a, type: transform, expression: \"'x'\"}\n"

    browser.sign_in(stack.keys["viewer"])
    browser.open("/ui/workflows")
    assert browser.absent("#new-workflow")
    browser.assert_accessible("the workflows list")
    browser.open(f"/ui/workflows/{workflow_id}")
    for action in ("#action-edit", "#action-pause", "#action-activate", "#action-delete",
                   "form#action-start", "#start-run"):
        assert browser.absent(action), f"a viewer sees {action}"
    browser.assert_accessible("the workflow page of a viewer")
    browser.open("/ui/workflows/new")
    assert browser.text("main h1") == "Not allowed"

    csrf = browser.attr('input[name="csrf_token"]', "value")
    assert csrf
    posts = {
        "/ui/workflows/new": {"definition": definition},
        f"/ui/workflows/{workflow_id}/edit": {"definition": definition},
        "/ui/workflows/validate": {"definition": definition},
        f"/ui/workflows/{workflow_id}/status/pause": {},
        f"/ui/workflows/{workflow_id}/status/delete": {},
        f"/ui/workflows/{workflow_id}/start": {"input.n": "3", "idempotency_key": "viewer"},
    }
    for path, fields in posts.items():
        assert _post(browser, path, {"csrf_token": csrf, **fields}) == 403, path

    # An operator runs workflows but does not author them.
    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/workflows/{workflow_id}")
    assert browser.absent("#action-edit") and browser.absent("#action-delete")
    assert not browser.absent("form#action-start")
    csrf = browser.attr('input[name="csrf_token"]', "value")
    assert csrf
    for path in (f"/ui/workflows/{workflow_id}/edit", f"/ui/workflows/{workflow_id}/status/delete",
                 "/ui/workflows/new"):
        assert _post(browser, path, {"csrf_token": csrf, "definition": definition}) == 403, path

    # An editor without the form's CSRF token is refused too.
    browser.sign_in(editor_key)
    browser.open(f"/ui/workflows/{workflow_id}")
    for path in (f"/ui/workflows/{workflow_id}/edit", f"/ui/workflows/{workflow_id}/status/delete",
                 f"/ui/workflows/{workflow_id}/start"):
        assert _post(browser, path, {"csrf_token": "forged", "definition": definition}) == 403

    after = _workflow(stack, workflow_id)
    assert (after["status"], after["latest_version"], after["definition_hash"]) == (
        before["status"], before["latest_version"], before["definition_hash"])
    runs = stack.client.get("/api/executions", params={"workflow_id": workflow_id}).json()
    assert runs["items"] == [], "a refused start started a run"
    named = stack.client.get("/api/workflows", params={"q": "sneaky"}).json()
    assert named["items"] == [], "a refused create created a workflow"
