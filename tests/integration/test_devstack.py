"""`bend dev`: the shared stack answers; a scratch stack starts, stops and fails clearly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from bend.devstack import kafka, postgres, process, stack
from bend.devstack.errors import JavaMissing, MavenMissing, NotAnswering, PortTaken
from bend.settings import DatabaseSettings, Settings, get_settings

pytestmark = pytest.mark.integration


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together so they differ)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture
def scratch() -> Iterator[Settings]:
    """Settings for a second stack in its own state dir on free ports; stopped and removed after."""
    shared = get_settings()
    parent = Path(shared.dev.state_dir) / "tests"
    parent.mkdir(parents=True, exist_ok=True)
    # Under the state dir, not /tmp/pytest-of-*: as root, Postgres runs as another user that must
    # be able to enter every parent folder.
    state = Path(tempfile.mkdtemp(prefix="stack-", dir=parent))
    state.chmod(0o755)
    shared_libs = kafka.KafkaPaths.of(shared).libs
    if kafka.KafkaPaths.of(shared).libs_marker.is_file():
        (state / "kafka").mkdir()
        (state / "kafka" / "libs").symlink_to(shared_libs)  # no second 46 MB download
    kafka_port, controller_port, pg_port = _free_ports(3)
    dev = shared.dev.model_copy(
        update={
            "state_dir": state,
            "kafka_port": kafka_port,
            "kafka_controller_port": controller_port,
            "postgres_port": pg_port,
            "start_timeout_s": 60.0,
        }
    )
    settings = shared.model_copy(
        update={"dev": dev, "database": DatabaseSettings(), "database_url": None}
    )
    try:
        yield settings
    finally:
        stack.down(settings)
        shutil.rmtree(state, ignore_errors=True)


def _nothing_runs(settings: Settings) -> bool:
    return kafka.running_pid(settings) is None and postgres.running_pid(settings) is None


def test_status_reports_kafka_and_postgres_running_with_a_pid(
    kafka_bootstrap: str, database_url: str
) -> None:
    kafka_status, pg_status = stack.status(get_settings())
    assert kafka_status.running and kafka_status.answering
    assert isinstance(kafka_status.pid, int) and kafka_status.pid > 0
    assert pg_status.answering
    if pg_status.managed:
        assert isinstance(pg_status.pid, int) and pg_status.pid > 0


def test_a_second_up_is_a_no_op_that_says_so(kafka_bootstrap: str, database_url: str) -> None:
    settings = get_settings()
    before = {s.name: s.pid for s in stack.status(settings)}
    started = time.monotonic()
    outcomes = stack.up(settings)
    assert time.monotonic() - started < 10
    assert {o.name: o.action for o in outcomes} in (
        {"kafka": "already running", "postgres": "already running"},
        {"kafka": "already running", "postgres": "external"},
    )
    assert "already running" in outcomes[0].describe()
    assert {s.name: s.pid for s in stack.status(settings)} == before


def test_the_broker_runs_with_the_settings_bend_relies_on(kafka_bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["auto.create.topics.enable"].value == "false"
    assert configs["group.min.session.timeout.ms"].value == "1000"
    assert configs["group.initial.rebalance.delay.ms"].value == "0"


async def test_postgres_answers_a_query(database_url: str) -> None:
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        assert await conn.fetchval("SELECT 40 + 2") == 42
        settings = get_settings()
        if not settings.database.url:
            assert await conn.fetchval("SELECT current_database()") == settings.dev.postgres_db
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("field", "setting"),
    [
        ("kafka_port", "BEND_DEV__KAFKA_PORT"),
        ("kafka_controller_port", "BEND_DEV__KAFKA_CONTROLLER_PORT"),
        ("postgres_port", "BEND_DEV__POSTGRES_PORT"),
    ],
)
def test_a_taken_port_is_a_typed_error_naming_the_port_and_its_setting(
    scratch: Settings, field: str, setting: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = scratch.model_copy(update={"dev": scratch.dev.model_copy(update={field: port})})
        with pytest.raises(PortTaken) as caught:
            stack.up(settings)
    assert caught.value.port == port
    assert str(port) in caught.value.message and setting in caught.value.message
    assert _nothing_runs(settings)


def test_missing_java_is_a_typed_error_saying_how_to_install_it(
    scratch: Settings, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # an empty folder: no java on it
    with pytest.raises(JavaMissing) as caught:
        stack.up(scratch, env=env)
    assert "JDK 17" in caught.value.message
    assert "apt-get install openjdk-17-jre-headless" in caught.value.message
    assert _nothing_runs(scratch)


def test_missing_maven_is_a_typed_error_when_the_jars_must_be_downloaded(
    scratch: Settings, tmp_path: Path
) -> None:
    (Path(scratch.dev.state_dir) / "kafka" / "libs").unlink(missing_ok=True)  # the shared jars
    (tmp_path / "java").symlink_to(shutil.which("java") or "/usr/bin/java")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # java, but no mvn
    with pytest.raises(MavenMissing) as caught:
        stack.up(scratch, env=env)
    assert "apt-get install maven" in caught.value.message
    assert _nothing_runs(scratch)


def test_bend_dev_up_reports_a_typed_error_in_one_line_with_a_failing_exit_code(
    scratch: Settings,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {
            **os.environ,
            "BEND_DEV__STATE_DIR": str(scratch.dev.state_dir),
            "BEND_DEV__KAFKA_PORT": str(port),
        }
        done = subprocess.run(
            [sys.executable, "-c", "from bend.cli.main import main; main()", "dev", "up"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"port {port}" in done.stderr and "BEND_DEV__KAFKA_PORT" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.timeout(60)
def test_a_broker_that_does_not_answer_in_time_is_an_error_pointing_at_its_log(
    scratch: Settings, database_url: str
) -> None:
    # An external database so only Kafka starts; a JVM cannot boot a broker in half a second.
    impatient = scratch.model_copy(
        update={
            "dev": scratch.dev.model_copy(update={"start_timeout_s": 0.5}),
            "database": DatabaseSettings(url=database_url),
        }
    )
    with pytest.raises(NotAnswering) as caught:
        stack.up(impatient)
    log = kafka.KafkaPaths.of(impatient).log
    assert caught.value.log_path == log and str(log) in caught.value.message
    assert kafka.running_pid(impatient) is not None  # left to finish booting; the fixture stops it


@pytest.mark.timeout(240)
def test_a_scratch_stack_starts_stops_and_restarts_from_its_own_state_dir(
    scratch: Settings,
) -> None:
    first = {o.name: o for o in stack.up(scratch)}
    assert first["kafka"].action == "started" and first["postgres"].action == "started"
    assert all(s.running and s.answering for s in stack.status(scratch))
    assert {o.action for o in stack.up(scratch)} == {"already running"}

    pids = [first["kafka"].pid, first["postgres"].pid]
    stopped = {o.name: o.action for o in stack.down(scratch)}
    assert stopped == {"kafka": "stopped", "postgres": "stopped"}
    assert not any(s.running for s in stack.status(scratch))
    assert not any(process.pid_alive(pid) for pid in pids)
    assert {o.action for o in stack.down(scratch)} == {"not running"}

    again = {o.name: o.action for o in stack.up(scratch)}  # formatted data, initdb done
    assert again == {"kafka": "started", "postgres": "started"}
    assert kafka.answering(kafka.bootstrap(scratch))
    assert postgres.answers(postgres.database_url(scratch)) is None
