"""Triggers in real Chromium on the real engine: a cron trigger added from the form, whose five
previewed fire times are the ones the API reports once it is saved; paused and resumed; a
webhook whose secret is shown once; a Kafka trigger from YAML; deleting after a confirmation; a
backfill that starts each past due time once; viewers and operators see no action, and their forms posted by hand get 403 and change
nothing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from selenium.webdriver.support.ui import Select

from bend.security.webhooks import SIGNATURE_HEADER, sign
from tests.browser.conftest import Browser, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SUFFIX = uuid.uuid4().hex[:8]
TRIGGERED: dict[str, Any] = {
    "name": f"triggered-{SUFFIX}",
    "description": "Started by its triggers.",
    "steps": [{"id": "greet", "type": "transform", "expression": "'hello'"}],
}


def _triggers(stack: Stack, workflow_id: str) -> dict[str, dict[str, Any]]:
    r = stack.client.get(f"/api/workflows/{workflow_id}/triggers")
    assert r.status_code == 200, r.text
    return {t["trigger_id"]: t for t in r.json()["items"]}


def _row_ids(browser: Browser, kind: str) -> list[str]:
    return [i for i, t in browser.read("tr.trigger-row", "data-trigger-id", "data-type")
            if t == kind and i is not None]


def _retype(browser: Browser, css: str, text: str) -> None:
    field = browser.one(css)
    field.clear()
    field.send_keys(text)


def _finished(stack: Stack, run_id: str, timeout_s: float = 60.0) -> str:
    """The run's status once it is projected and finished (a just-started run may not be yet)."""
    deadline = time.monotonic() + timeout_s
    while stack.client.get(f"/api/executions/{run_id}").status_code == 404:
        assert time.monotonic() < deadline, f"run {run_id} never showed"
        time.sleep(0.2)
    return str(stack.until(run_id, {"completed", "failed", "cancelled"}, timeout_s)["status"])


def _previewed(browser: Browser) -> list[str]:
    return [at for (at,) in browser.read("#cron-preview li", "data-at") if at]


def test_a_cron_trigger_fires_when_its_preview_said_and_is_paused_resumed_and_edited(
        browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register(TRIGGERED)
    browser.sign_in(stack.keys["admin"])
    browser.open(f"/ui/workflows/{workflow_id}")
    browser.one("#manage-triggers").click()
    browser.wait(lambda: browser.path() == f"/ui/workflows/{workflow_id}/triggers",
                 "the triggers page")
    browser.assert_accessible("the triggers page")

    browser.one("#cron-expr").send_keys("61 9 * * 1-5")  # the preview reports it as you type
    browser.wait(lambda: not browser.absent("#cron-expr-error"), "the expression's live error")
    assert _previewed(browser) == []
    _retype(browser, "#cron-expr", "0 9 * * 1-5")
    _retype(browser, "#cron-tz", "Europe/Pariss")
    browser.wait(lambda: not browser.absent("#cron-tz-error") and browser.absent(
        "#cron-expr-error"), "the zone's live error, the expression's gone")
    assert "Europe/Paris" in (browser.text("#cron-tz-error") or "")
    Select(browser.one("#cron-missed")).select_by_value("run_once")
    browser.one("#save-cron").click()  # refused by the server: its word by the field, typing kept
    browser.wait(lambda: not browser.absent("#form-errors"), "the refused form")
    assert browser.attr("#cron-expr", "value") == "0 9 * * 1-5"
    assert browser.attr("#cron-tz", "value") == "Europe/Pariss"
    assert browser.attr("#cron-missed option[selected]", "value") == "run_once"
    assert browser.attr("#cron-tz", "aria-describedby") == "cron-tz-error"
    assert not _triggers(stack, workflow_id)

    _retype(browser, "#cron-tz", "Europe/Paris")
    _retype(browser, "#cron-wstart", "08:00")
    _retype(browser, "#cron-wend", "18:00")
    browser.wait(lambda: len(_previewed(browser)) == 5 and browser.absent(".field-error"),
                 "five previewed fire times")
    previewed = _previewed(browser)
    assert all(at.endswith(("T07:00:00Z", "T08:00:00Z")) for at in previewed), previewed
    assert browser.absent("#form-errors"), "the refusal's notice goes once the fields are fixed"
    browser.assert_accessible("the cron form with its preview")
    browser.driver.execute_script("window.scrollTo(0, 0)")
    browser.screenshot("trigger", max_height=1400)
    browser.one("#save-cron").click()
    browser.wait(lambda: not browser.absent("#trigger-done"), "the added notice")
    (trigger_id,) = _row_ids(browser, "schedule")
    r = stack.client.get(f"/api/triggers/{trigger_id}/next", params={"count": 5})
    assert r.status_code == 200, r.text
    reported = [at.replace("+00:00", "Z") for at in r.json()["items"]]
    assert reported == previewed
    saved = stack.client.get(f"/api/triggers/{trigger_id}").json()
    assert saved["definition"]["schedule"]["missed_policy"] == "run_once"
    assert saved["definition"]["schedule"]["window"]["start"] == "08:00:00"

    row = f'tr.trigger-row[data-trigger-id="{trigger_id}"]'
    browser.one(f"{row} .action-pause").click()
    browser.wait(lambda: browser.attr(row, "data-enabled") == "false", "the paused row")
    assert stack.client.get(f"/api/triggers/{trigger_id}").json()["enabled"] is False
    assert stack.client.get(f"/api/triggers/{trigger_id}/next").json()["items"] == []
    browser.one(f"{row} .action-resume").click()
    browser.wait(lambda: browser.attr(row, "data-enabled") == "true", "the resumed row")
    assert stack.client.get(f"/api/triggers/{trigger_id}").json()["enabled"] is True

    browser.one(f"{row} .action-edit").click()
    browser.wait(lambda: len(_previewed(browser)) == 5, "the edit form's preview")
    assert browser.attr("#cron-tz", "value") == "Europe/Paris"
    assert browser.attr("#cron-wstart", "value") == "08:00"
    browser.assert_accessible("the trigger's edit form")
    _retype(browser, "#cron-expr", "30 10 * * *")
    browser.wait(lambda: all(at.endswith(("T08:30:00Z", "T09:30:00Z"))
                             for at in _previewed(browser)), "the edited preview")
    edited = _previewed(browser)
    browser.one("#save-cron").click()
    browser.wait(lambda: not browser.absent("#trigger-done"), "the saved notice")
    after = stack.client.get(f"/api/triggers/{trigger_id}/next").json()["items"]
    assert [at.replace("+00:00", "Z") for at in after] == edited


def test_a_webhooks_secret_is_shown_once_and_a_trigger_is_deleted_after_confirmation(
        browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register(TRIGGERED)
    browser.sign_in(stack.keys["admin"])
    browser.open(f"/ui/workflows/{workflow_id}/triggers")
    path = f"hook-{SUFFIX}"
    browser.one("#hook-path").send_keys("Not A Slug")
    browser.one("#save-webhook").click()
    browser.wait(lambda: not browser.absent("#hook-path-error"), "the path's error")
    assert browser.attr("#hook-path", "value") == "Not A Slug"
    _retype(browser, "#hook-path", path)
    browser.one("#save-webhook").click()
    secret = browser.wait(lambda: browser.text("#webhook-secret"), "the new secret")
    assert len(secret) >= 32
    assert (browser.text("#webhook-url") or "").endswith(f"/webhooks/{path}")
    browser.assert_accessible("the webhook's secret page")
    name = browser.text("#webhook-secret-name")
    assert stack.client.get(f"/api/secrets/{name}").status_code == 200
    hook_id = browser.text("#webhook-trigger-id")
    assert _triggers(stack, workflow_id)[hook_id]["definition"]["secret_name"] == name
    body = json.dumps({"hello": "hook"})  # the secret shown is the one deliveries are signed with
    delivered = httpx.post(f"{stack.url}/webhooks/{path}", content=body, timeout=30, headers={
        "Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, int(time.time()), body)})
    assert delivered.status_code == 202, delivered.text
    assert _finished(stack, delivered.json()["run_id"]) == "completed"

    browser.one("#back-to-triggers").click()
    browser.wait(lambda: hook_id in _row_ids(browser, "webhook"), "the webhook's row")
    assert secret not in browser.driver.page_source  # shown that once only
    assert (browser.text(f'tr[data-trigger-id="{hook_id}"] .trigger-url') or "").endswith(path)
    browser.open(f"/ui/triggers/{hook_id}/edit")  # no GET page shows it again either
    assert secret not in browser.driver.page_source

    browser.open(f"/ui/workflows/{workflow_id}/triggers")
    browser.one("#trigger-definition").send_keys("type: kafka\ntopic: orders created")
    browser.one("#save-definition").click()  # the core's word by the box, the text kept
    browser.wait(lambda: not browser.absent("#trigger-definition-error"), "the topic's error")
    assert "topic" in (browser.text("#trigger-definition-error") or "")
    assert browser.one("#trigger-definition").get_property("value") == (
        "type: kafka\ntopic: orders created")
    assert not _row_ids(browser, "kafka")
    _retype(browser, "#trigger-definition", "type: kafka\ntopic: orders.created")
    browser.one("#save-definition").click()
    browser.wait(lambda: _row_ids(browser, "kafka"), "the Kafka trigger's row")
    (kafka_id,) = _row_ids(browser, "kafka")
    browser.one(f'tr[data-trigger-id="{kafka_id}"] .action-pause').click()
    browser.wait(lambda: browser.attr(f'tr[data-trigger-id="{kafka_id}"]', "data-enabled")
                 == "false", "the paused Kafka trigger")

    browser.one(f'tr[data-trigger-id="{hook_id}"] .action-delete').click()
    browser.wait(lambda: not browser.absent("#confirm-delete"), "the confirmation")
    assert hook_id in _triggers(stack, workflow_id), "asking deletes nothing"
    browser.assert_accessible("the delete confirmation")
    browser.one("#confirm-delete").click()
    browser.wait(lambda: not browser.absent("#trigger-done"), "the deleted notice")
    assert hook_id not in _row_ids(browser, "webhook")
    assert stack.client.get(f"/api/triggers/{hook_id}").status_code == 404


def test_viewers_and_operators_see_no_trigger_actions_and_their_posts_get_403(
        browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register(TRIGGERED)
    r = stack.client.post(f"/api/workflows/{workflow_id}/triggers", json={"definition": {
        "type": "schedule", "schedule": {"cron": "0 6 * * *"}}})
    assert r.status_code == 201, r.text
    trigger_id = r.json()["trigger_id"]
    stack.client.get(f"/api/triggers/{trigger_id}",
                     params={"wait_for": r.json()["position"]["token"]})
    before = _triggers(stack, workflow_id)
    for role in ("viewer", "operator"):
        browser.sign_in(stack.keys[role])
        browser.open(f"/ui/workflows/{workflow_id}/triggers")
        assert trigger_id in _row_ids(browser, "schedule")
        for css in ("#cron-form", "#webhook-form", "#definition-form", ".action-pause",
                    ".action-resume", ".action-edit", ".action-delete", ".action-backfill"):
            assert browser.absent(css), (role, css)
        browser.assert_accessible(f"the triggers page for a {role}")
        token = browser.attr("input[name=csrf_token]", "value")
        cookie = browser.driver.get_cookie("bend_session")
        assert token and cookie is not None
        with httpx.Client(base_url=stack.url, cookies={"bend_session": cookie["value"]},
                          follow_redirects=False, timeout=30) as hand:
            posts = [(f"/ui/triggers/{trigger_id}/pause", {}),
                     (f"/ui/triggers/{trigger_id}/delete", {"confirm": trigger_id}),
                     (f"/ui/triggers/{trigger_id}/edit", {"cron": "@hourly"}),
                     (f"/ui/workflows/{workflow_id}/triggers/cron", {"cron": "@hourly"}),
                     (f"/ui/workflows/{workflow_id}/triggers/webhook", {"path": "sneaky"}),
                     (f"/ui/workflows/{workflow_id}/triggers/definition",
                      {"definition": "type: kafka\ntopic: t"}),
                     ("/ui/triggers/preview", {"cron": "@hourly"})]
            for path, data in posts:
                r = hand.post(path, data={"csrf_token": token, **data})
                assert r.status_code == 403, (role, path, r.status_code)
                r = hand.post(f"/ui/triggers/{trigger_id}/backfill", data={
                    "csrf_token": token, "start": "2026-01-01T00:00", "end": "2026-01-02T00:00"})
                assert r.status_code == 403, (role, "backfill", r.status_code)
            for path in (f"/ui/triggers/{trigger_id}/edit", f"/ui/triggers/{trigger_id}/delete",
                         f"/ui/triggers/{trigger_id}/backfill"):
                assert hand.get(path).status_code == 403, (role, path)
    assert _triggers(stack, workflow_id) == before


def _set(browser: Browser, css: str, value: str) -> None:
    browser.driver.execute_script("arguments[0].value = arguments[1]", browser.one(css), value)


def test_a_backfill_starts_each_past_due_time_once(browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register(TRIGGERED)
    r = stack.client.post(f"/api/workflows/{workflow_id}/triggers", json={"definition": {
        "type": "schedule", "schedule": {"cron": "0 9 * * *"}}})
    assert r.status_code == 201, r.text
    trigger_id = r.json()["trigger_id"]
    stack.client.get(f"/api/triggers/{trigger_id}",
                     params={"wait_for": r.json()["position"]["token"]})
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = (today - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"), today.strftime(
        "%Y-%m-%dT%H:%M")
    browser.sign_in(stack.keys["admin"])
    browser.open(f"/ui/workflows/{workflow_id}/triggers")
    browser.one(f'tr[data-trigger-id="{trigger_id}"] .action-backfill').click()
    browser.wait(lambda: not browser.absent("#backfill-form"), "the backfill dialog")
    browser.assert_accessible("the backfill dialog")
    _set(browser, "#backfill-start", end)  # reversed: refused by the end, typing kept
    _set(browser, "#backfill-end", start)
    browser.one("#start-backfill").click()
    browser.wait(lambda: not browser.absent("#backfill-end-error"), "the range's error")
    assert browser.attr("#backfill-start", "value") == end

    _set(browser, "#backfill-start", start)
    _set(browser, "#backfill-end", end)
    browser.one("#start-backfill").click()
    browser.wait(lambda: not browser.absent("#backfill-done"), "the backfill's result")
    assert browser.text("#backfill-started") == "3"
    runs = [href.rsplit("/", 1)[-1] for (href,) in browser.read(".backfill-row a", "href")
            if href]
    assert len(runs) == 3
    assert _finished(stack, runs[0]) == "completed"
    browser.assert_accessible("the backfill's result")

    browser.open(f"/ui/triggers/{trigger_id}/backfill")  # the same range again: all had fired
    _set(browser, "#backfill-start", start)
    _set(browser, "#backfill-end", end)
    browser.one("#start-backfill").click()
    browser.wait(lambda: not browser.absent("#backfill-done"), "the second result")
    assert browser.text("#backfill-started") == "0"
    assert browser.text("#backfill-already") == "3"


def _definition(stack: Stack, trigger_id: str) -> dict[str, Any]:
    r = stack.client.get(f"/api/triggers/{trigger_id}")
    assert r.status_code == 200, r.text
    return dict(r.json()["definition"])


def _refused(browser: Browser, *fields: str) -> None:
    """Wait for the refused form; each of `fields` (element ids) has its error beside it."""
    browser.wait(lambda: all(not browser.absent(f"#{f}-error") for f in fields),
                 f"the errors beside {fields}")
    for f in fields:
        assert browser.attr(f"#{f}", "aria-describedby") == f"{f}-error", f
        assert browser.attr(f"#{f}", "aria-invalid") == "true", f


def test_kafka_and_polling_triggers_are_added_and_edited_from_their_fields(
        browser: Browser, stack: Stack) -> None:
    workflow_id = stack.register({**TRIGGERED, "name": f"sources-{SUFFIX}"})
    browser.sign_in(stack.keys["admin"])
    browser.open(f"/ui/workflows/{workflow_id}/triggers")
    browser.one("#kafka-topic").send_keys("orders created")
    browser.one("#kafka-filter").send_keys("kind == 'big' &&")
    browser.one("#save-kafka").click()  # the core's word by each field, what was typed kept
    _refused(browser, "kafka-topic", "kafka-filter")
    assert "topic name" in (browser.text("#kafka-topic-error") or "")
    assert browser.attr("#kafka-topic", "value") == "orders created"
    assert browser.attr("#kafka-filter", "value") == "kind == 'big' &&"
    assert browser.focused()["id"] == "kafka-topic", "the keyboard starts at the first problem"
    browser.assert_accessible("the refused Kafka form")
    assert not _row_ids(browser, "kafka")
    _retype(browser, "#kafka-topic", "orders.created")
    _retype(browser, "#kafka-filter", "kind == 'big'")
    browser.one("#kafka-input-mapping").send_keys("order")
    browser.one("#save-kafka").click()
    browser.wait(lambda: _row_ids(browser, "kafka"), "the Kafka trigger's row")
    (kafka_id,) = _row_ids(browser, "kafka")
    saved = _definition(stack, kafka_id)
    assert (saved["topic"], saved["filter"], saved["input_mapping"]) == (
        "orders.created", "kind == 'big'", "order")

    browser.one(f'tr[data-trigger-id="{kafka_id}"] .action-edit').click()
    browser.wait(lambda: browser.attr("#kafka-topic", "value") == "orders.created",
                 "the edit form filled in")
    assert browser.attr("#kafka-filter", "value") == "kind == 'big'"
    browser.one("#kafka-schema-registry-url").send_keys("http://registry.example:8081")
    _retype(browser, "#kafka-filter", "kind == 'huge'")
    browser.one("#save-kafka").click()  # a registry for JSON records: refused by the format
    _refused(browser, "kafka-format")
    assert browser.attr("#kafka-filter", "value") == "kind == 'huge'"
    assert browser.attr("#kafka-schema-registry-url", "value") == "http://registry.example:8081"
    browser.assert_accessible("the refused Kafka edit form")
    Select(browser.one("#kafka-format")).select_by_value("avro")
    browser.one("#save-kafka").click()
    browser.wait(lambda: not browser.absent("#trigger-done"), "the saved notice")
    saved = _definition(stack, kafka_id)
    assert (saved["format"], saved["filter"], saved["schema_registry_url"]) == (
        "avro", "kind == 'huge'", "http://registry.example:8081")

    browser.one("#polling-url").send_keys("ftp://example.com/items")
    _retype(browser, "#polling-interval-seconds", "soon")
    Select(browser.one("#polling-change-detection")).select_by_value("cursor")
    browser.one("#save-polling").click()
    _refused(browser, "polling-interval-seconds", "polling-cursor")
    _retype(browser, "#polling-interval-seconds", "120")
    browser.one("#polling-cursor").send_keys("items[0].id")
    browser.one("#save-polling").click()  # the scheme only the core checks
    _refused(browser, "polling-url")
    assert browser.attr("#polling-cursor", "value") == "items[0].id"
    assert browser.attr("#polling-change-detection option[selected]", "value") == "cursor"
    _retype(browser, "#polling-url", "https://example.com/items")
    browser.one("#save-polling").click()
    browser.wait(lambda: _row_ids(browser, "polling"), "the polling trigger's row")
    (polling_id,) = _row_ids(browser, "polling")
    saved = _definition(stack, polling_id)
    assert saved["change_detection"] == {"mode": "cursor", "cursor": "items[0].id"}
    assert saved["interval_seconds"] == 120

    browser.open(f"/ui/triggers/{polling_id}/edit")
    assert browser.attr("#polling-cursor", "value") == "items[0].id"
    _retype(browser, "#polling-interval-seconds", "0")
    browser.one("#save-polling").click()
    _refused(browser, "polling-interval-seconds")
    assert browser.attr("#polling-interval-seconds", "value") == "0"
    _retype(browser, "#polling-interval-seconds", "300")
    browser.one("#save-polling").click()
    browser.wait(lambda: not browser.absent("#trigger-done"), "the saved notice")
    edited = _definition(stack, polling_id)
    assert edited["interval_seconds"] == 300 and edited["backoff"] == saved["backoff"]
