"""Secrets, API keys, the audit log and the system page in real Chromium on the real engine:
an admin sets, rotates and deletes a secret (its value never on a page), creates and revokes a
key and reads the audit entries those actions made; an operator sees the running stack's worker
roles; each page refuses the roles it is not for, and a forbidden form posted by hand gets 403
and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import Browser, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SUFFIX = uuid.uuid4().hex[:8]
SECRET = f"UI_TOKEN_{SUFFIX}"
VALUE = f"s3cr3t-{uuid.uuid4().hex}"
ROTATED = f"r0tated-{uuid.uuid4().hex}"
USES_SECRET: dict[str, Any] = {
    "name": f"uses-secret-{SUFFIX}",
    "steps": [{"id": "call", "type": "http", "method": "GET", "url": "http://127.0.0.1:9/none",
               "headers": {"Authorization": f"Bearer {{{{ secrets.{SECRET} }}}}"},
               "retry": {"max_attempts": 1}}],
}


@pytest.fixture(scope="module")
def editor_key(stack: Stack) -> str:
    """A key with the editor role (reads secrets, may not write them)."""
    r = stack.client.post("/api/keys", json={"role": "editor", "name": "browser editor"})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _csrf(browser: Browser) -> str:
    token = browser.attr("input[name=csrf_token]", "value")
    assert token, "every signed-in page carries the session's CSRF token"
    return token


def _secret(stack: Stack, name: str) -> dict[str, Any] | None:
    r = stack.client.get(f"/api/secrets/{name}")
    assert r.status_code in (200, 404), r.text
    return r.json() if r.status_code == 200 else None


def test_a_secret_is_set_rotated_and_deleted_in_the_ui_and_its_value_is_never_shown(
        browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register(USES_SECRET)
    browser.sign_in(stack.keys["admin"])
    browser.open("/ui/secrets")
    browser.one("#secret-name").send_keys(SECRET)
    browser.one("#secret-hosts").send_keys("https://api.example.com")
    browser.one("#save-secret").click()  # no value, a URL for a host: refused, typing kept
    browser.wait(lambda: not browser.absent("#secret-value-error"), "the value's error")
    assert not browser.absent("#secret-hosts-error")
    assert browser.attr("#secret-name", "value") == SECRET
    assert browser.attr("#secret-hosts", "value") == "https://api.example.com"
    assert browser.attr("#secret-value", "aria-describedby") == "secret-value-error"
    assert _secret(stack, SECRET) is None

    browser.one("#secret-value").send_keys(VALUE)
    hosts = browser.one("#secret-hosts")
    hosts.clear()
    hosts.send_keys("api.example.com")
    browser.one("#save-secret").click()
    browser.wait(lambda: not browser.absent("#secret-saved"), "the saved notice")
    row = f'tr.secret-row[data-name="{SECRET}"]'
    assert browser.text(f"{row} .secret-hosts") == "api.example.com"
    assert browser.text(f"{row} .secret-users") == USES_SECRET["name"]
    assert browser.attr(f"{row} .secret-users a", "href").endswith(f"/ui/workflows/{workflow_id}")
    assert VALUE not in browser.driver.page_source
    first = _secret(stack, SECRET)
    assert first is not None
    browser.screenshot("secrets")

    browser.one(f"{row} a.action-rotate").click()
    browser.one("#secret-value").send_keys(ROTATED)
    browser.one("#save-secret").click()
    browser.wait(lambda: not browser.absent("#secret-saved"), "the rotated notice")
    assert ROTATED not in browser.driver.page_source and VALUE not in browser.driver.page_source
    rotated = _secret(stack, SECRET)
    assert rotated is not None and rotated["updated_at"] > first["updated_at"]
    assert rotated["allowed_hosts"] == ["api.example.com"], "rotating kept the hosts"

    browser.one(f"{row} a.action-delete").click()
    browser.wait(lambda: USES_SECRET["name"] in (browser.text("#secret-users") or ""),
                 "the warning naming the workflow that uses it")
    browser.one("#confirm-delete").click()
    browser.wait(lambda: not browser.absent("#secret-deleted"), "the deleted notice")
    assert browser.absent(row)
    assert _secret(stack, SECRET) is None

    browser.open("/ui/audit")
    done = [a for a, r in browser.read("tr.audit-row", "data-action", "data-resource")
            if r == f"secret:{SECRET}"]
    assert done == ["secret.delete", "secret.set", "secret.set"], done
    assert VALUE not in browser.driver.page_source and ROTATED not in browser.driver.page_source
    browser.open(f"/ui/secrets/{SECRET}")
    assert "Not found" in (browser.text("h1") or "")


def test_a_secret_is_set_and_deleted_with_the_keyboard_alone(
        browser: Browser, stack: Stack) -> None:
    name, value = f"KEYBOARD_{SUFFIX}", f"k3y-{uuid.uuid4().hex}"
    browser.sign_in(stack.keys["admin"])
    browser.open("/ui/secrets")
    browser.driver.execute_script("document.activeElement && document.activeElement.blur()")
    stops = browser.tab_to("#secret-name")
    assert all(s["visible"] for s in stops), f"a focus stop shows no focus: {stops}"
    browser.press(name, Keys.TAB)
    assert browser.focused()["id"] == "secret-value"
    browser.press(Keys.TAB)
    assert browser.focused()["id"] == "secret-hosts"
    browser.press("api.example.com", Keys.ENTER)  # no value: refused
    browser.wait(lambda: not browser.absent("#secret-value-error"), "the value's error")
    focus = browser.focused()  # the refused form puts the keyboard on the field to fix
    assert focus["id"] == "secret-value" and focus["visible"], focus
    assert browser.attr("#secret-hosts", "value") == "api.example.com"
    browser.press(value, Keys.ENTER)
    browser.wait(lambda: not browser.absent("#secret-saved"), "the saved notice")
    assert (_secret(stack, name) or {}).get("allowed_hosts") == ["api.example.com"]

    row = f'tr.secret-row[data-name="{name}"]'
    browser.tab_to(f"{row} a.action-delete", limit=200)
    browser.press(Keys.ENTER)
    browser.wait(lambda: browser.path().endswith("/delete"), "the confirmation")
    assert browser.focused()["id"] == "confirm-cancel", "the focus starts in the confirmation"
    browser.press(Keys.ESCAPE)  # closes it, as a dialog: nothing deleted
    browser.wait(lambda: browser.path() == "/ui/secrets", "Escape back to the secrets")
    assert _secret(stack, name) is not None
    browser.tab_to(f"{row} a.action-delete", limit=200)
    browser.press(Keys.ENTER)
    browser.wait(lambda: browser.focused()["id"] == "confirm-cancel", "the confirmation")
    browser.chord(Keys.SHIFT, Keys.TAB)
    assert browser.focused()["id"] == "confirm-delete"
    browser.press(Keys.ENTER)
    browser.wait(lambda: not browser.absent("#secret-deleted"), "the deleted notice")
    assert _secret(stack, name) is None


def test_a_key_created_and_revoked_in_the_ui_is_in_the_audit_log(
        browser: Browser, stack: Stack) -> None:
    browser.sign_in(stack.keys["admin"])
    browser.open("/ui/keys")
    name = f"ci bot {SUFFIX}"
    browser.one("#key-name").send_keys(name)
    Select(browser.one("#key-role")).select_by_value("operator")
    project = browser.one("#key-project")
    project.clear()
    project.send_keys("no such project!")
    browser.one("#create-key").click()  # a bad project: refused next to it, the rest kept
    browser.wait(lambda: not browser.absent("#key-project-error"), "the project's error")
    assert browser.attr("#key-name", "value") == name
    assert Select(browser.one("#key-role")).first_selected_option.get_attribute("value") == \
        "operator"
    browser.one("#key-project").clear()
    browser.one("#create-key").click()
    key = browser.wait(lambda: browser.text("#new-key"), "the new key, shown once")
    key_id = browser.text("#new-key-id")
    assert key.startswith("bend_") and key_id
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        assert client.get("/api/workflows", headers={"X-Api-Key": key}).status_code == 200
        browser.open("/ui/keys")
        assert key not in browser.driver.page_source, "the key is shown once only"
        row = f'tr.key-row[data-key-id="{key_id}"]'
        assert browser.attr(row, "data-state") == "active"
        browser.one(f"{row} a.action-revoke").click()
        assert key_id in (browser.text("#confirm-title") or "")
        browser.one("#confirm-revoke").click()
        browser.wait(lambda: not browser.absent("#key-revoked"), "the revoked notice")
        assert browser.attr(row, "data-state") == "revoked"
        browser.screenshot("keys")
        assert client.get("/api/workflows", headers={"X-Api-Key": key}).status_code == 401

    browser.open("/ui/audit")
    Select(browser.one("#f-action")).select_by_value("key.create")
    browser.one("#apply-filters").click()
    entry = f'tr.audit-row[data-resource="key:{key_id}"]'
    browser.wait(lambda: not browser.absent(entry), "the key's creation in the audit log")
    assert {a for (a,) in browser.read("tr.audit-row", "data-action")} == {"key.create"}
    actor = browser.attr(entry, "data-actor")
    browser.open(f"/ui/audit?actor={actor}&action=key.revoke")
    assert browser.attr(entry, "data-action") == "key.revoke"
    browser.screenshot("audit")
    browser.open("/ui/audit?since=2999-01-01T00:00&actor=" + str(actor))
    assert browser.absent("tr.audit-row"), "nothing happened after the range's start"
    browser.open("/ui/audit?since=yesterday")
    assert not browser.absent("#f-since-error") and browser.attr("#f-since", "value") == \
        "yesterday"


def test_the_system_page_shows_the_running_stacks_worker_roles(
        browser: Browser, stack: Stack) -> None:
    browser.sign_in(stack.keys["operator"])
    browser.open("/ui/system")
    roles = {r: int(m or 0) for r, m in browser.read("tr.worker-row", "data-role",
                                                      "data-members")}
    assert roles.get("orchestrator", 0) >= 1 and roles.get("executor", 0) >= 1, roles
    checks = dict(browser.read(".health-check", "data-check", "data-ok"))
    assert checks == {"postgres": "true", "kafka": "true"}, checks
    assert browser.text("#projector-lag")
    assert browser.absent("form[method=post]:not([action='/ui/logout'])"), "read-only"
    browser.screenshot("system")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_roles_without_secrets_keys_or_audit_get_403_and_no_links(
        browser: Browser, stack: Stack, role: str) -> None:
    browser.sign_in(stack.keys[role])
    browser.open("/ui/runs")
    nav = browser.text("nav.mainnav") or ""
    assert "Secrets" not in nav and "Keys" not in nav and "Audit" not in nav
    assert ("System" in nav) == (role == "operator")
    for path in ("/ui/secrets", "/ui/keys", "/ui/audit", *(["/ui/system"]
                                                            if role == "viewer" else [])):
        browser.open(path)
        assert "Not allowed" in (browser.text("h1") or ""), path


def test_forbidden_forms_posted_by_hand_get_403_and_change_nothing(
        browser: Browser, stack: Stack, editor_key: str) -> None:
    kept = f"KEPT_{SUFFIX}"
    assert stack.client.put(f"/api/secrets/{kept}", json={"value": "v"}).status_code in (200,
                                                                                         201)
    target = stack.client.post("/api/keys", json={"role": "viewer", "name": "target"}).json()
    before_keys = len(stack.client.get("/api/keys").json()["items"])
    for key in (stack.keys["viewer"], stack.keys["operator"], editor_key):
        browser.sign_in(key)
        browser.open("/ui/runs")
        token = _csrf(browser)
        cookie = browser.driver.get_cookie("bend_session")
        assert cookie is not None
        with httpx.Client(base_url=stack.url, cookies={"bend_session": cookie["value"]},
                          follow_redirects=False, timeout=30) as hand:
            posts = [("/ui/secrets", {"name": f"NEW_{SUFFIX}", "value": "x"}),
                     (f"/ui/secrets/{kept}/delete", {"confirm": kept}),
                     ("/ui/keys", {"name": "sneaky", "role": "admin"}),
                     (f"/ui/keys/{target['key_id']}/revoke", {})]
            for path, data in posts:
                r = hand.post(path, data={"csrf_token": token, **data})
                assert r.status_code == 403, (path, r.status_code)
    assert _secret(stack, f"NEW_{SUFFIX}") is None
    assert _secret(stack, kept) is not None
    keys = stack.client.get("/api/keys").json()["items"]
    assert len(keys) == before_keys
    assert next(k for k in keys if k["key_id"] == target["key_id"])["revoked_at"] is None


def test_an_editor_reads_secrets_but_gets_no_form(browser: Browser, stack: Stack,
                                                  editor_key: str) -> None:
    browser.sign_in(editor_key)
    browser.open("/ui/secrets")
    assert browser.text("h1") == "Secrets"
    assert browser.absent("#secret-form") and browser.absent("a.action-delete")
    for path in ("/ui/keys", "/ui/audit", "/ui/system"):
        browser.open(path)
        assert "Not allowed" in (browser.text("h1") or ""), path


def test_a_form_without_the_csrf_token_is_refused(browser: Browser, stack: Stack) -> None:
    browser.sign_in(stack.keys["admin"])
    cookie = browser.driver.get_cookie("bend_session")
    assert cookie is not None
    with httpx.Client(base_url=stack.url, cookies={"bend_session": cookie["value"]},
                      timeout=30) as hand:
        r = hand.post("/ui/secrets", data={"name": f"NOCSRF_{SUFFIX}", "value": "x"})
    assert r.status_code == 403
    assert _secret(stack, f"NOCSRF_{SUFFIX}") is None


def test_a_project_admin_asking_for_another_projects_key_is_told_by_the_field(
        browser: Browser, stack: Stack) -> None:
    r = stack.client.post("/api/keys", json={"role": "admin", "name": "team admin",
                                             "project": f"team-{SUFFIX}"})
    assert r.status_code == 201, r.text
    browser.sign_in(r.json()["key"])
    browser.open("/ui/keys")
    before = browser.read("tr.key-row", "data-key-id")
    browser.one("#key-name").send_keys("sneaky")
    Select(browser.one("#key-role")).select_by_value("admin")
    project = browser.one("#key-project")
    project.clear()
    project.send_keys(stack.settings.project)  # the installation's project: not theirs
    browser.one("#create-key").click()
    browser.wait(lambda: not browser.absent("#key-project-error"), "the project's error")
    assert "installation" in (browser.text("#key-project-error") or "")
    assert browser.attr("#key-name", "value") == "sneaky"
    assert browser.attr("#key-project", "value") == stack.settings.project
    assert browser.attr("#key-role option[selected]", "value") == "admin"
    assert browser.absent("#new-key")
    assert browser.read("tr.key-row", "data-key-id") == before
