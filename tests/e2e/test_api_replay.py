"""Replay and fork through the REST API, as a user drives them, on the real engine and projector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bend.server.testing import RunningApi
from bend.devstack.engine import Engine, running_engine
from tests.e2e.test_api_engine import run_of, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GREETER: dict[str, Any] = {
    "name": "greeter_replayed",
    "input_schema": {"type": "object", "required": ["who"]},
    "steps": [
        {"id": "greet", "type": "transform", "expression": "join(' ', ['hello', input.who])"},
        {"id": "shout", "type": "transform",
         "mapping": {"text": "steps.greet.output", "who": "input.who"}},
    ],
    "output": "steps.shout.output",
}


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    with running_engine(executors=0) as engine:
        yield engine


async def test_a_run_replays_from_the_log_and_a_fork_reuses_what_came_before_its_step(
        api: RunningApi) -> None:
    source = await run_of(api, GREETER, {"who": "ada"})
    await until(api, source, {"completed"})

    r = await api.client.get(f"/api/executions/{source}/replay")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["status"] == "completed" and report["output"] == {"text": "hello ada",
                                                                    "who": "ada"}
    assert [s["step_id"] for s in report["steps"]] == ["greet", "shout"]
    assert report["projection_checked"] is True and report["differences"] == []

    r = await api.client.post(f"/api/executions/{source}/fork",
                              json={"from_step": "shout", "set": {"who": "bob"}})
    assert r.status_code == 202, r.text
    fork = r.json()
    assert fork["forked_from_run_id"] == source and fork["reused"] == ["greet"]
    done = await until(api, fork["run_id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    # greet's recorded output was reused ("hello ada"); only shout ran, with the new input.
    assert done["output"] == {"text": "hello ada", "who": "bob"}
    assert done["forked_from_run_id"] == source

    r = await api.client.get(f"/api/executions/{fork['run_id']}/replay")
    assert r.status_code == 200 and r.json()["fork_step_id"] == "shout", r.text


async def test_bad_replays_and_forks_are_refused_with_a_problem(api: RunningApi) -> None:
    source = await run_of(api, GREETER, {"who": "ada"})
    await until(api, source, {"completed"})
    r = await api.client.get("/api/executions/no-such-run/replay")
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.client.post("/api/executions/no-such-run/fork", json={"from_step": "shout"})
    assert r.status_code == 404, r.text
    r = await api.client.post(f"/api/executions/{source}/fork", json={"from_step": "ghost"})
    assert 400 <= r.status_code < 500 and "ghost" in r.json()["detail"], r.text
    r = await api.client.post(f"/api/executions/{source}/fork", json={})
    assert r.status_code == 422, r.text
    for body in ({"from_step": "sh\x00out"}, {"from_step": "shout", "set": {"who": "a\x00"}},
                 {"from_step": "shout", "input": {"w\x00ho": "ada"}}):
        r = await api.client.post(f"/api/executions/{source}/fork", json=body)
        assert r.status_code == 422 and "NUL" in r.text, r.text
