"""`bend replay projections` and `bend replay status`, run as a user would, beside an API on the
same read model: the CLI's rebuild is recorded like the API's, so the API reports it, one refuses
while the other runs (exit 2 naming it, or 409), and an abandoned one says what to do. Real Kafka
and Postgres; the CLI is a real `bend` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import Settings, get_settings
from projections import switch
from projections.db import database_url
from tests.e2e.rebuilt import TERMINAL, some_runs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ABANDONED_AFTER_S = 4.0
BEND = str(Path(sys.executable).parent / "bend")


def _as_in_a_terminal() -> None:
    """Ctrl-C reaches the CLI as in a terminal, even when the suite itself was started in the
    background (a non-interactive shell's `cmd &` ignores SIGINT, and children inherit that:
    the CLI then never saw the test's Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass(frozen=True, slots=True)
class Cli:
    """The environment a user's `bend` needs for the API's read model and topics."""

    env: dict[str, str]

    async def run(self, *args: str, timeout_s: float = 90) -> tuple[int, str, str]:
        """Run `bend *args` to its end: exit code, stdout, stderr."""
        process = await self.start(*args)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        """Start `bend *args`, its output piped."""
        return await asyncio.create_subprocess_exec(
            BEND, *args, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, preexec_fn=_as_in_a_terminal)


@dataclass(frozen=True, slots=True)
class Stack:
    """An API (with its projector) on a read model of its own, and the CLI pointed at it."""

    api: RunningApi
    cli: Cli
    settings: Settings


@pytest.fixture()
async def stack(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Stack]:
    base = isolated_settings(get_settings())
    api = base.api.model_copy(update={"rebuild_heartbeat_s": 0.3,
                                      "rebuild_abandoned_after_s": ABANDONED_AFTER_S})
    settings = base.model_copy(update={"api": api})
    env = {**os.environ, "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_DATABASE__URL": settings.database.url or "",
           "BEND_DATABASE__SCHEMA_NAME": settings.database.schema_name,
           "BEND_API__REBUILD_HEARTBEAT_S": "0.3",
           "BEND_API__REBUILD_ABANDONED_AFTER_S": str(ABANDONED_AFTER_S),
           "BEND_LOG__LEVEL": "WARNING", "PYTHONFAULTHANDLER": "1"}
    try:
        async with running_api(settings) as running:
            assert running.projector is not None
            await asyncio.wait_for(running.projector.ready.wait(), 30)
            await some_runs(running)
            yield Stack(running, Cli(env), settings)
    finally:
        await drop_isolated(settings)




async def _exits(process: asyncio.subprocess.Process, within_s: float) -> None:
    """Wait for `process` to exit; past `within_s`, have it dump its tasks' stacks (SIGUSR1)
    and its threads' (PYTHONFAULTHANDLER, SIGABRT) and fail with what it printed."""
    done = asyncio.ensure_future(process.communicate())
    try:
        await asyncio.wait_for(asyncio.shield(done), within_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # its tasks' stacks (bend.ops.taskdump)
            process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(2)
            process.send_signal(signal.SIGABRT)
        out, err = await asyncio.wait_for(done, 30)
        pytest.fail(f"the CLI did not exit within {within_s:.0f} s of Ctrl-C; its output:\n"
                    f"{out.decode()[-4000:]}\n{err.decode()[-12000:]}")


@asynccontextmanager
async def _batches_held(settings: Settings) -> AsyncIterator[None]:
    """Hold the live schema's batch lock: a rebuild waits in phase `verifying` until released
    (as it would behind a long projector batch), so it is seen running."""
    conn = await asyncpg.connect(database_url(settings))
    try:
        async with conn.transaction():
            await switch.hold_batches(conn, settings.database.schema_name)
            yield
    finally:
        await conn.close()


async def _status(api: RunningApi, rebuild_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/replay/projections/{rebuild_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def _until_phase(api: RunningApi, rebuild_id: str, phases: set[str],
                       timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await _status(api, rebuild_id)
        if status["phase"] in phases:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)


async def _rebuild_id_of(process: asyncio.subprocess.Process, timeout_s: float = 60) -> str:
    """The id the CLI prints once its rebuild is claimed (on stderr)."""
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(),
                                       max(0.1, deadline - time.monotonic()))).decode()
        assert line, f"the CLI ended without naming its rebuild: {''.join(seen)}"
        seen.append(line)
        found = re.match(r"rebuild ([0-9a-f]{12}) ", line)
        if found:
            return found[1]


async def test_a_cli_rebuild_is_reported_by_the_api_and_refuses_an_api_rebuild_while_it_runs(
        stack: Stack) -> None:
    api, cli = stack.api, stack.cli
    async with _batches_held(stack.settings):
        process = await cli.start("replay", "projections", "--json")
        try:
            rebuild_id = await _rebuild_id_of(process)
            running = await _until_phase(api, rebuild_id, {"verifying", *TERMINAL})
            assert running["phase"] == "verifying", running
            assert running["owner"].endswith(f":{process.pid}") and running["finished_at"] is None

            refused = await api.client.post("/api/replay/projections", json={})
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"] == "rebuild_in_progress"
            assert refused.json()["rebuild_id"] == rebuild_id

            code, out, err = await cli.run("replay", "status", rebuild_id)
            assert code == 0, err
            assert f"rebuild {rebuild_id}  verifying" in out and running["owner"] in out
        except BaseException:
            process.kill()
            raise
    out_b, err_b = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err_b.decode()

    ended = await _status(api, rebuild_id)
    assert ended["phase"] == "switched" and ended["identical"], ended
    assert ended["records"] > 0 and ended["finished_at"] is not None
    printed = json.loads(out_b)
    assert printed["rebuild_id"] == rebuild_id and printed["phase"] == "switched"

    code, out, err = await cli.run("replay", "status", rebuild_id, "--json")
    assert code == 0, err
    assert json.loads(out) == ended
    # Ended: the API may start the next one.
    r = await api.client.post("/api/replay/projections", json={"only": "runs"})
    assert r.status_code == 202, r.text
    assert (await _until_phase(api, r.json()["rebuild_id"], TERMINAL))["phase"] == "switched"


async def test_a_cli_rebuild_is_refused_with_exit_2_naming_an_api_rebuild_that_runs(
        stack: Stack) -> None:
    api, cli = stack.api, stack.cli
    async with _batches_held(stack.settings):
        r = await api.client.post("/api/replay/projections", json={})
        assert r.status_code == 202, r.text
        rebuild_id = r.json()["rebuild_id"]
        running = await _until_phase(api, rebuild_id, {"verifying", *TERMINAL})
        assert running["phase"] == "verifying", running

        code, out, err = await cli.run("replay", "projections")
        assert code == 2, (code, out, err)
        assert f"rebuild {rebuild_id}" in err and running["owner"] in err
        assert "phase verifying" in err and f"started {running['started_at']}" in err
        assert f"bend replay status {rebuild_id}" in err
        assert (await _status(api, rebuild_id))["phase"] == "verifying"  # left alone
    ended = await _until_phase(api, rebuild_id, TERMINAL)
    assert ended["phase"] == "switched", ended

    code, out, err = await cli.run("replay", "status", rebuild_id)
    assert code == 0, err
    assert f"rebuild {rebuild_id}  switched" in out


async def test_a_killed_cli_rebuild_is_reported_abandoned_with_what_to_do_and_a_new_one_takes_over(
        stack: Stack) -> None:
    api, cli = stack.api, stack.cli
    async with _batches_held(stack.settings):
        process = await cli.start("replay", "projections")
        try:
            rebuild_id = await _rebuild_id_of(process)
            await _until_phase(api, rebuild_id, {"verifying"})
        finally:
            process.send_signal(signal.SIGKILL)  # dies mid-rebuild, nothing recorded
            await process.wait()

    abandoned = await _until_phase(api, rebuild_id, {"abandoned"}, ABANDONED_AFTER_S + 20)
    assert abandoned["owner"].endswith(f":{process.pid}")
    code, out, err = await cli.run("replay", "status", rebuild_id)
    assert code == 0, err
    assert f"rebuild {rebuild_id}  abandoned" in out and abandoned["abandoned"] in out
    assert f"DROP SCHEMA {abandoned['rebuilt_schema']} CASCADE" in out

    code, out, err = await cli.run("replay", "projections")  # takes over
    assert code == 0, err
    assert (await _status(api, rebuild_id))["error"].endswith("presumed dead")


async def test_an_interrupted_cli_rebuild_is_recorded_failed_and_the_next_may_start_at_once(
        stack: Stack) -> None:
    api, cli = stack.api, stack.cli
    async with _batches_held(stack.settings):
        process = await cli.start("replay", "projections")
        try:
            rebuild_id = await _rebuild_id_of(process)
            await _until_phase(api, rebuild_id, {"verifying"})
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C
            await _exits(process, 60)
    assert process.returncode == 130
    ended = await _status(api, rebuild_id)
    assert ended["phase"] == "failed" and ended["finished_at"] is not None, ended
    assert "stopped it" in ended["error"]
    r = await api.client.post("/api/replay/projections", json={"only": "runs"})
    assert r.status_code == 202, r.text  # no waiting for it to be presumed dead
    assert (await _until_phase(api, r.json()["rebuild_id"], TERMINAL))["phase"] == "switched"


async def test_the_status_of_an_unknown_rebuild_says_so_and_exits_non_zero(stack: Stack) -> None:
    code, out, err = await stack.cli.run("replay", "status", "nope")
    assert code != 0
    assert (f"no rebuild nope is recorded for schema {stack.settings.database.schema_name}"
            in err), err
    assert "bend replay projections" in err
