"""Backtests in real Chromium on the real engine: an operator starts one from the Backtests page
with a changed prompt; its page shows each run beside its original, one changed and one not,
and the aggregate; the http step after the agent is not called again."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bend.devstack.llm_server import ServerHandle
from tests.browser.conftest import Browser, Stack
from tests.e2e.backtesting import NEW_PROMPT, Hook, served_hook, workflow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[Hook, ServerHandle]]:
    with served_hook() as served:
        yield served


def test_an_operator_backtests_a_prompt_change_and_reads_the_comparison(
        browser: Browser, stack: Stack, hook: tuple[Hook, ServerHandle]) -> None:
    counting, handle = hook
    definition = {**workflow(stack.engine.llm.base_url, f"{handle.url}/hook"),
                  "name": "browser_desk"}
    wf = stack.register(definition)
    for run_input in ({"topic": "browsers", "suffix": " today"},
                      {"topic": "engines", "suffix": ""}):
        stack.until(stack.start(wf, run_input), {"completed"})
    hook_before = counting.requests

    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/backtests?workflow_id={wf}")
    browser.one("#b-step").send_keys("research")
    browser.one("#b-changes").send_keys(json.dumps({"prompt": NEW_PROMPT}))
    limit = browser.one("#b-limit")
    limit.clear()
    limit.send_keys("2")
    browser.one("#start-backtest-button").click()
    browser.wait(lambda: browser.path().startswith("/ui/backtests/"), "the backtest's page")
    where = browser.path()

    def verdicts() -> list[str | None]:
        browser.open(where)
        found = sorted(v[0] or "" for v in browser.read("tr.comparison-row", "data-verdict"))
        return found if found == ["changed", "unchanged"] else []

    browser.wait(verdicts, "both runs compared", timeout_s=90, poll_s=1)
    assert browser.text("#count-changed") == "1"
    assert browser.text("#count-unchanged") == "1"
    assert "today" in (browser.text('tr.comparison-row[data-verdict="changed"]') or "")
    browser.screenshot("backtest")
    assert counting.requests == hook_before

    browser.sign_in(stack.keys["viewer"])
    browser.open("/ui/backtests")
    assert browser.absent("#start-backtest"), "a viewer may not start a backtest"
    assert not browser.absent(f'tr.backtest-row[data-backtest-id="{where.rsplit("/", 1)[1]}"]')


def test_a_refused_backtest_form_keeps_what_was_typed_with_the_error_by_its_field(
        browser: Browser, stack: Stack, example_id: str) -> None:
    browser.sign_in(stack.keys["operator"])
    browser.open(f"/ui/backtests?workflow_id={example_id}")
    browser.one("#b-step").send_keys("research")
    browser.one("#b-changes").send_keys('{"prompt": ')
    browser.one("#start-backtest-button").click()
    browser.wait(lambda: not browser.absent("#b-changes-error"), "the change's error")
    assert "not JSON" in (browser.text("#b-changes-error") or "")
    assert browser.attr("#b-changes", "aria-describedby") == "b-changes-error"
    assert browser.one("#b-changes").get_property("value") == '{"prompt": '
    assert browser.attr("#b-step", "value") == "research"
    assert browser.attr("#b-workflow option[selected]", "value") == example_id

    step = browser.one("#b-step")
    step.clear()
    step.send_keys("no_such_step")
    changes = browser.one("#b-changes")
    changes.clear()
    changes.send_keys(json.dumps({"prompt": "Be brief."}))
    browser.one("#start-backtest-button").click()  # the engine's word on the step
    browser.wait(lambda: not browser.absent("#b-step-error"), "the step's error")
    assert "no_such_step" in (browser.text("#b-step-error") or "")
    assert browser.one("#b-changes").get_property("value") == json.dumps({"prompt": "Be brief."})
    assert browser.absent("#b-changes-error")
    browser.assert_accessible("the refused backtest form")
