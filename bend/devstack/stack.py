"""The local stack as one thing: `up`, `down` and `status` for Kafka and Postgres, idempotent."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bend.devstack import kafka, postgres
from bend.devstack.service import Outcome, ServiceStatus
from bend.settings import Settings

__all__ = ["down", "status", "up"]


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Serialise `up`/`down` on one state dir, so two at once cannot start two brokers."""
    state = Path(settings.dev.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "dev.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def up(settings: Settings, env: Mapping[str, str] | None = None) -> list[Outcome]:
    """Start Kafka and Postgres unless they already run; one Outcome each (plus the jar download).

    env replaces os.environ for finding java and mvn and for the processes started (tests pass
    a PATH without java). Ports and tools are checked before anything starts, and the broker's
    JVM boots while Postgres starts, so a cold `up` costs about the slower of the two.
    """
    env = dict(os.environ if env is None else env)
    with _locked(settings):
        kafka_pid = kafka.running_pid(settings)
        pg_pid = None if settings.database.url else postgres.running_pid(settings)
        if kafka_pid is None:
            kafka.preflight(settings, env)
        if pg_pid is None:
            postgres.preflight(settings)

        outcomes: list[Outcome] = []
        kafka_action, launched_at = "already running", None
        if kafka_pid is None:
            downloaded = kafka.ensure_jars(settings, env)
            if downloaded is not None:
                version = settings.dev.kafka_version
                outcomes.append(Outcome("kafka jars", "downloaded", downloaded, detail=version))
            launched_at = time.monotonic()
            kafka_pid, kafka_action = kafka.launch(settings, env), "started"

        pg_outcome = _postgres_up(settings, pg_pid)

        # Waits even when it already ran: an earlier `up` that timed out may have left it booting.
        kafka.wait_ready(settings, kafka_pid, settings.dev.start_timeout_s)
        seconds = 0.0 if launched_at is None else time.monotonic() - launched_at
        address = kafka.bootstrap(settings)
        outcomes.append(Outcome("kafka", kafka_action, seconds, pid=kafka_pid, address=address))
        return [*outcomes, pg_outcome]


def _postgres_up(settings: Settings, pid: int | None) -> Outcome:
    """Start the embedded Postgres, or only check the external one."""
    started = time.monotonic()
    url = postgres.database_url(settings)
    if settings.database.url:
        postgres.check_external(settings)
        seconds = time.monotonic() - started
        return Outcome("postgres", "external", seconds, address=postgres.redacted(url))
    if pid is not None:
        return Outcome("postgres", "already running", 0.0, pid=pid, address=url)
    pid = postgres.start(settings)
    return Outcome("postgres", "started", time.monotonic() - started, pid=pid, address=url)


def down(settings: Settings) -> list[Outcome]:
    """Stop the stack's processes by their PIDs; a stopped stack stays stopped."""
    with _locked(settings):
        outcomes = []
        for name, stop in (("kafka", kafka.stop), ("postgres", postgres.stop)):
            if name == "postgres" and settings.database.url:
                outcomes.append(Outcome(name, "external, left alone", 0.0))
                continue
            started = time.monotonic()
            pid, killed = stop(settings)
            action = "not running" if pid is None else ("killed" if killed else "stopped")
            outcomes.append(Outcome(name, action, time.monotonic() - started, pid=pid))
        return outcomes


def status(settings: Settings) -> list[ServiceStatus]:
    """Kafka's and Postgres's state: running (PID, address, answering?) or not."""
    return [kafka.status(settings), postgres.status(settings)]
