"""Signing in to the web UI in real Chromium: with an API key, a wrong one, as a viewer (who finds
no actions) and out again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Browser, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ACTIONS = ("#action-start", "#action-cancel", "#action-fork", "#action-retry", ".action-retry",
           ".action-redrive", "#new-workflow", "#action-edit", "#action-pause", "#action-activate",
           "#action-delete")


def test_a_page_without_a_session_leads_to_the_login_form(browser: Browser) -> None:
    browser.sign_out_all()
    browser.open("/ui/runs")
    assert browser.path().startswith("/ui/login?next="), browser.path()
    browser.one("input#api-key")
    browser.one("button#sign-in")
    browser.screenshot("login")


def test_a_wrong_key_shows_why_sign_in_failed(browser: Browser, stack: Stack) -> None:
    browser.sign_out_all()
    browser.open("/ui/login")
    browser.one("input#api-key").send_keys("bend_nonsense_not-a-key")
    browser.one("button#sign-in").click()
    error = browser.one("#login-error")
    assert error.is_displayed() and error.text.strip(), "the login error says nothing"
    assert browser.path().startswith("/ui/login"), browser.path()
    assert browser.driver.get_cookie("bend_session") is None
    browser.open("/ui/runs")
    assert browser.path().startswith("/ui/login"), "a refused key opened a session"


def test_an_operator_signs_in_with_a_key_and_out_again(browser: Browser, stack: Stack) -> None:
    browser.sign_in(stack.keys["operator"])
    assert browser.path().startswith("/ui/runs"), browser.path()
    browser.one("main#page-runs")
    assert "operator" in browser.one("#whoami").text
    cookie = browser.driver.get_cookie("bend_session")
    assert cookie is not None and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    assert stack.keys["operator"] not in cookie["value"], "the session cookie holds the key"
    browser.one("#sign-out").click()
    browser.wait(lambda: browser.path().startswith("/ui/login"), "the login page after sign-out")
    browser.open("/ui/workflows")
    assert browser.path().startswith("/ui/login"), "pages still open after sign-out"


@pytest.fixture(scope="module")
def waiting_run(stack: Stack) -> str:
    """A run asleep in a 1 h delay (cancellable, forkable)."""
    run_id = stack.asleep()
    return run_id


def _actions_on_pages(browser: Browser, pages: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in pages:
        browser.open(page)
        browser.one("main")
        assert not browser.path().startswith("/ui/login"), f"{page} asked to sign in again"
        found[page] = [css for css in ACTIONS if not browser.absent(css)]
    return found


def test_a_viewer_finds_no_actions_where_an_operator_finds_them(
        browser: Browser, stack: Stack, example_id: str, waiting_run: str,
        failed_run: dict[str, Any]) -> None:
    pages = [f"/ui/workflows/{example_id}", f"/ui/runs/{waiting_run}",
             f"/ui/runs/{failed_run['run_id']}", "/ui/runs", "/ui/workflows"]
    browser.sign_in(stack.keys["operator"])
    operator = _actions_on_pages(browser, pages)
    assert "#action-start" in operator[pages[0]], operator
    assert "#action-edit" not in operator[pages[0]], "operators run workflows, not author them"
    assert {"#action-cancel", "#action-fork"} <= set(operator[pages[1]]), operator
    assert ".action-retry" in operator[pages[2]], operator
    browser.open(pages[2])
    retry = browser.read("form.action-retry[data-step-id]", "data-step-id")
    assert retry == [[failed_run["failed_step_id"]]], retry

    browser.sign_in(stack.keys["viewer"])
    assert "viewer" in browser.one("#whoami").text
    viewer = _actions_on_pages(browser, pages)
    assert viewer == {page: [] for page in pages}, viewer
    browser.open("/ui/dead-letters")  # payloads may hold user data: viewers may not read them
    assert browser.absent(".dead-letter-row") and browser.absent(".action-redrive")
