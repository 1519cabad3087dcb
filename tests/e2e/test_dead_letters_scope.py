"""Dead letters are scoped by the project of the run they belong to: a caller of project A never
lists, reads or re-drives project B's; records of no run are for admins only. Real Kafka and
Postgres, the API and its projector (no workers: the dead letters are produced as `streams.dlq`
does)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.contracts.codec import encode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.events import DeadLettered
from bend.kafka.producer import RecordProducer
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NOW = datetime.now(timezone.utc)


@pytest.fixture()
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


def _start(project: str) -> StartRun:
    run_id = str(uuid.uuid4())
    return StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-gone",
                    workflow_version=1, occurred_at=NOW, correlation_id=run_id,
                    project=project, input={"n": 1}, definition={"name": "gone", "steps": []})


def _dead(source_topic: str, key: bytes | None, payload: bytes) -> DeadLettered:
    return DeadLettered(event_id=str(uuid.uuid4()), workflow_id="", occurred_at=NOW,
                        source_topic=source_topic, source_partition=0, source_offset=7,
                        error_type="UnknownWorkflowId", reason="no such workflow", key=key,
                        payload=payload)


async def _letters(api: RunningApi) -> dict[str, Any]:
    """Runs of projects a and b, a dead letter of each, and one of no run (a workflow record)."""
    commands = topic_name("commands", api.settings)
    start_a, start_b = _start("proj-a"), _start("proj-b")
    letters = {
        "a": _dead(commands, start_a.run_id.encode(), encode(start_a)),
        "b": _dead(commands, start_b.run_id.encode(), encode(start_b)),
        "none": _dead(topic_name("workflows", api.settings), b"wf-gone", b"\x00junk"),
        # A durable timer of run a (keyed `<run_id>:<purpose>:<step>:<attempt>`).
        "timer_a": _dead(topic_name("timers", api.settings),
                         f"{start_a.run_id}:delay:wait:1".encode(), b"\x00junk"),
    }
    async with RecordProducer(api.settings) as producer:
        positions = await producer.send_many([start_a, start_b, *letters.values()])
    # Every read below waits until the projector applied all of them.
    wait = {"wait_for": [p.token for p in positions]}
    return {"wait": wait, "ids": {k: v.event_id for k, v in letters.items()},
            "runs": {"a": start_a.run_id, "b": start_b.run_id}}


async def _listed(api: RunningApi, key: str, wait: dict[str, Any]) -> set[str]:
    r = await api.client.get("/api/dead-letters", params=wait, headers=api.headers(key))
    assert r.status_code == 200, r.text
    return {i["event_id"] for i in r.json()["items"]}


async def test_a_caller_sees_only_its_projects_dead_letters_and_admins_those_of_no_run(
        api: RunningApi) -> None:
    made = await _letters(api)
    wait, ids = made["wait"], made["ids"]
    operator_a, operator_b = await api.key("operator", "proj-a"), await api.key("operator", "proj-b")
    admin_a, editor_a = await api.key("admin", "proj-a"), await api.key("editor", "proj-a")

    assert await _listed(api, operator_a, wait) == {ids["a"], ids["timer_a"]}
    assert await _listed(api, editor_a, wait) == {ids["a"], ids["timer_a"]}
    assert await _listed(api, operator_b, wait) == {ids["b"]}
    # Records of no run are the installation's: an admin of project a does not see them.
    assert await _listed(api, admin_a, wait) == {ids["a"], ids["timer_a"]}
    # The installation's admin (of the settings' project) sees neither project's, only the
    # record of no run.
    assert await _listed(api, api.admin_key, wait) == {ids["none"]}

    r = await api.client.get(f"/api/dead-letters/{ids['a']}", headers=api.headers(operator_a))
    assert r.status_code == 200 and r.json()["payload"]["run_id"] == made["runs"]["a"]
    for key, hidden in ((operator_a, "b"), (operator_a, "none"), (operator_b, "a"),
                        (operator_b, "timer_a"), (admin_a, "b"), (admin_a, "none")):
        r = await api.client.get(f"/api/dead-letters/{ids[hidden]}", headers=api.headers(key))
        assert r.status_code == 404, (hidden, r.text)
        assert r.json()["error"] == "unknown_dead_letter"
    r = await api.client.get(f"/api/dead-letters/{ids['none']}",
                             headers=api.headers(api.admin_key))
    assert r.status_code == 200 and r.json()["decode_error"]


async def test_a_caller_cannot_redrive_another_projects_dead_letters(api: RunningApi) -> None:
    made = await _letters(api)
    wait, ids = made["wait"], made["ids"]
    operator_a = api.headers(await api.key("operator", "proj-a"))
    await _listed(api, await api.key("operator", "proj-a"), wait)  # all projected

    before = await api.log_ends()
    for path, body in ((f"/api/dead-letters/{ids['b']}/redrive", None),
                       (f"/api/dead-letters/{ids['none']}/redrive", None),
                       ("/api/dead-letters/redrive", {"event_ids": [ids["a"], ids["b"]]})):
        r = await api.client.post(path, json=body, headers=operator_a)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == "unknown_dead_letter"
    assert await api.log_ends() == before  # nothing was sent back, not even project a's

    # Re-driving by filter takes project a's only.
    r = await api.client.post("/api/dead-letters/redrive",
                              json={"error_type": "UnknownWorkflowId"}, headers=operator_a)
    assert r.status_code == 202, r.text
    redriven = {d["event_id"]: d for d in r.json()["redriven"]}
    assert set(redriven) == {ids["a"], ids["timer_a"]}
    r = await api.client.post(f"/api/dead-letters/{ids['a']}/redrive", json={"force": True},
                              params={"wait_for": redriven[ids["a"]]["position"]},
                              headers=operator_a)
    assert r.status_code == 202 and r.json()["forced"] is True
    # Project b's is still there, never re-driven.
    r = await api.client.get(f"/api/dead-letters/{ids['b']}", params=wait,
                             headers=api.headers(await api.key("operator", "proj-b")))
    assert r.status_code == 200 and r.json()["redriven"] is False


async def test_the_web_ui_scopes_dead_letters_as_the_api_does(api: RunningApi) -> None:
    from tests.e2e.web_pages import get_page, signed_in

    made = await _letters(api)
    ids = made["ids"]
    operator_a = await api.key("operator", "proj-a")
    await _listed(api, operator_a, made["wait"])  # all projected
    client = await signed_in(api, operator_a)
    try:
        page = await get_page(client, "/ui/dead-letters")
        assert page.status == 200
        assert {r.attrs["data-event-id"] for r in page.all("tr", "dead-letter-row")} == {
            ids["a"], ids["timer_a"]}
        assert (await client.get(f"/ui/dead-letters/{ids['a']}")).status_code == 200
        assert (await client.get(f"/ui/dead-letters/{ids['b']}")).status_code == 404
        before = await api.log_ends()
        for path, form in ((f"/ui/dead-letters/{ids['b']}/redrive", {}),
                           ("/ui/dead-letters/redrive", {"event_id": ids["b"]})):
            r = await client.post(path, data={"csrf_token": page.csrf(), **form})
            assert r.status_code == 404, r.text
        assert await api.log_ends() == before
    finally:
        await client.aclose()
