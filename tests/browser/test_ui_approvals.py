"""The approvals inbox in real Chromium on the real engine: a run waiting on an approval shows
with its input; an operator approves it with an answer and a comment, and the run completes with
that answer as the step's output (an answer the schema refuses comes back by its field, kept); a
viewer sees it but gets no form."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import Browser, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GATE = {
    "name": "browser-gate",
    "steps": [
        {"id": "ask", "type": "approval", "message": "Ship ${input.version}?",
         "answer_schema": {"type": "object", "required": ["ticket"],
                           "properties": {"ticket": {"type": "string"}}}},
        {"id": "done", "type": "transform", "after": ["ask"],
         "mapping": {"shipped": "input.version", "ticket": "steps.ask.output.ticket"}},
    ],
}


def test_a_waiting_approval_is_approved_in_the_inbox_and_its_run_completes(
        browser: Browser, stack: Stack) -> None:
    run_id = stack.start(stack.register(GATE), {"version": "1.2.3"})
    stack.until(run_id, {"running"}, step=("ask", "scheduled"))

    browser.sign_in(stack.keys["viewer"])
    browser.open("/ui/approvals")
    card = f'section.approval[data-run-id="{run_id}"][data-step-id="ask"]'
    browser.wait(lambda: not browser.absent(card), "the viewer sees the waiting approval")
    assert browser.absent(f"{card} form.approval-form"), "a viewer may not decide"

    browser.sign_in(stack.keys["operator"])
    browser.open("/ui/approvals")
    browser.wait(lambda: not browser.absent(f"{card} form.approval-form"),
                 "the operator gets the form")
    assert browser.text(f"{card} .approval-message") == "Ship 1.2.3?"
    browser.one(f"{card} textarea[name=answer]").send_keys(json.dumps({"ticket": 7}))
    browser.one(f"{card} input[name=comment]").send_keys("green across the board")
    browser.one(f'{card} button[value="approve"]').click()  # the schema's word by the answer
    browser.wait(lambda: not browser.absent(f"{card} .field-error"), "the answer's error")
    assert "answer_schema" in (browser.text(f"{card} .field-error") or "")
    answer = browser.one(f"{card} textarea[name=answer]")
    assert answer.get_property("value") == json.dumps({"ticket": 7}), "what was typed is kept"
    assert answer.get_attribute("aria-invalid") == "true"
    assert browser.attr(f"{card} input[name=comment]", "value") == "green across the board"
    browser.assert_accessible("the refused approval")
    answer.clear()
    answer.send_keys(json.dumps({"ticket": "REL-7"}))
    browser.one(f'{card} button[value="approve"]').click()
    browser.wait(lambda: not browser.absent("#decision-sent"), "the decision is confirmed")
    browser.screenshot("approvals-decided")

    run = stack.until(run_id, {"completed"})
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["ask"]["output"] == {"ticket": "REL-7"}
    assert steps["done"]["output"] == {"shipped": "1.2.3", "ticket": "REL-7"}
    browser.open("/ui/approvals")
    browser.wait(lambda: browser.absent(card), "the decided approval leaves the inbox")
