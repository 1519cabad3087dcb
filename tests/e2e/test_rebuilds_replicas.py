"""Projection rebuilds behind a load balancer: several API replicas on one read model. Every
replica answers for a rebuild another one runs (its status is in Postgres), refuses a second
while one runs anywhere, and reports one whose process was killed as abandoned, with what to do;
a new rebuild then takes over. Real Kafka and Postgres; the killed replica is a real
`python -m bend.server serve` process on a port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import Settings, get_settings
from projections.db import database_url
from tests.e2e.rebuilt import TERMINAL, some_runs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ABANDONED_AFTER_S = 3.0


@dataclass(frozen=True, slots=True)
class Replicas:
    """Two API apps on the same read model (a projector feeds it through `a`)."""

    a: RunningApi
    b: RunningApi
    settings: Settings


@pytest.fixture()
async def replicas(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Replicas]:
    base = isolated_settings(get_settings())
    api = base.api.model_copy(update={"rebuild_heartbeat_s": 0.3,
                                      "rebuild_abandoned_after_s": ABANDONED_AFTER_S})
    settings = base.model_copy(update={"api": api})
    try:
        async with running_api(settings) as a, running_api(settings, projector=False) as b:
            assert a.projector is not None
            await asyncio.wait_for(a.projector.ready.wait(), 30)
            await some_runs(a)
            yield Replicas(a, b, settings)
    finally:
        await drop_isolated(settings)




async def _until_ended(api: RunningApi, rebuild_id: str, timeout_s: float = 90) -> tuple[
        dict[str, Any], set[str]]:
    phases = set()
    deadline = time.monotonic() + timeout_s
    while True:
        r = await api.client.get(f"/api/replay/projections/{rebuild_id}")
        assert r.status_code == 200, r.text
        status = r.json()
        phases.add(status["phase"])
        if status["phase"] in TERMINAL:
            return status, phases
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)


async def test_a_rebuild_started_on_one_replica_is_reported_and_guarded_by_every_replica(
        replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    r = await a.client.post("/api/replay/projections", json={})
    assert r.status_code == 202, r.text
    rebuild_id = r.json()["rebuild_id"]

    refused = await b.client.post("/api/replay/projections", json={})  # the other replica
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "rebuild_in_progress"
    assert refused.json()["rebuild_id"] == rebuild_id
    assert (await a.client.post("/api/replay/projections", json={"only": "runs"})
            ).status_code == 409

    seen = (await b.client.get(f"/api/replay/projections/{rebuild_id}")).json()
    assert seen["rebuild_id"] == rebuild_id and seen["phase"] not in TERMINAL
    assert seen["owner"].endswith(f":{os.getpid()}") and seen["finished_at"] is None

    ended, _ = await _until_ended(b, rebuild_id)
    assert ended["phase"] == "switched", ended
    assert ended["compared"] and ended["identical"], ended["differences"]
    assert ended["records"] > 0 and ended["progress"] == 1.0 and ended["events_per_second"] > 0
    assert ended["finished_at"] is not None and "projection_rebuilds" not in ended["tables"]
    assert (await a.client.get(f"/api/replay/projections/{rebuild_id}")).json() == ended

    # The history survived the switch of the whole schema; the next rebuild may start anywhere.
    r = await b.client.post("/api/replay/projections", json={"only": "runs"})
    assert r.status_code == 202, r.text
    second, _ = await _until_ended(a, r.json()["rebuild_id"])
    assert second["phase"] == "switched", second
    assert (await a.client.get(f"/api/replay/projections/{rebuild_id}")).json() == ended


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _serve(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_DATABASE__URL": database_url(settings),
           "BEND_DATABASE__SCHEMA_NAME": settings.database.schema_name,
           "BEND_API__REBUILD_HEARTBEAT_S": str(settings.api.rebuild_heartbeat_s),
           "BEND_API__REBUILD_ABANDONED_AFTER_S": str(ABANDONED_AFTER_S),
           "BEND_LOG__LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "bend.server", "serve", "--host",
                                "127.0.0.1", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while True:
            assert process.poll() is None, "the API process exited"
            try:
                if (await client.get("/api/health")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API process did not answer"
            await asyncio.sleep(0.2)


async def test_a_rebuild_whose_replica_was_killed_is_reported_abandoned_and_a_new_one_takes_over(
        replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    port = _free_port()
    process = await _serve(replicas.settings, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     headers=a.headers(a.admin_key)) as other:
            r = await other.post("/api/replay/projections", json={})
            assert r.status_code == 202, r.text
            rebuild_id = r.json()["rebuild_id"]
            os.kill(process.pid, signal.SIGKILL)  # the replica dies mid-rebuild
            process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    # Still within its heartbeat window: running as far as anyone knows, so refused.
    r = await b.client.post("/api/replay/projections", json={})
    assert r.status_code == 409 and r.json()["rebuild_id"] == rebuild_id, r.text

    deadline = time.monotonic() + ABANDONED_AFTER_S + 20
    while True:
        status = (await b.client.get(f"/api/replay/projections/{rebuild_id}")).json()
        if status["phase"] == "abandoned":
            break
        assert status["phase"] not in TERMINAL, status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)
    assert status["owner"].endswith(f":{process.pid}")
    assert status["finished_at"] is None  # nobody has ended it yet
    assert f"DROP SCHEMA {status['rebuilt_schema']} CASCADE" in status["abandoned"]
    assert "POST /api/replay/projections" in status["abandoned"]
    assert (await a.client.get(f"/api/replay/projections/{rebuild_id}")).json() == status

    r = await a.client.post("/api/replay/projections", json={})  # takes over
    assert r.status_code == 202, r.text
    ended, _ = await _until_ended(b, r.json()["rebuild_id"])
    assert ended["phase"] == "switched", ended
    old = (await b.client.get(f"/api/replay/projections/{rebuild_id}")).json()
    assert old["phase"] == "abandoned" and old["finished_at"] is not None
    assert "presumed dead" in old["error"]

    conn = await asyncpg.connect(database_url(replicas.settings))
    try:  # one row per rebuild, none unfinished, in the live schema
        rows = await conn.fetch(f"SELECT rebuild_id, phase, finished_at FROM "
                                f"{replicas.settings.database.schema_name}.projection_rebuilds")
        assert {r["rebuild_id"]: r["phase"] for r in rows}[rebuild_id] == "abandoned"
        assert all(r["finished_at"] is not None for r in rows)
    finally:
        await conn.close()


async def test_a_rebuild_marked_abandoned_while_still_running_stops_and_never_switches(
        replicas: Replicas) -> None:
    from bend.replay.projections import (
        RebuildAbandoned, RebuildRecorder, new_status, rebuild_projections,
    )
    from projections.queries import rebuilds as records

    settings, pool = replicas.settings, replicas.a.app.state.bend.pool
    recorder = RebuildRecorder.of(pool, settings)
    status = new_status(settings)
    await recorder.claim(status)
    # Another replica found it silent (a long pause) and marked it abandoned.
    await records.abandon(pool, status.rebuild_id)
    with pytest.raises(RebuildAbandoned):
        await rebuild_projections(settings, status, recorder=recorder)
    assert status.phase == "abandoned" and status.retired is None
    shown = (await replicas.b.client.get(f"/api/replay/projections/{status.rebuild_id}")).json()
    assert shown["phase"] == "abandoned" and shown["finished_at"] is not None
    async with pool.acquire() as conn:  # the live schema was not switched
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                                   f"{settings.database.schema_name}_old_{status.rebuild_id[:8]}"
                                   ) == 0
