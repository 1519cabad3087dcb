"""Liveness and readiness: a heartbeat the event loop keeps, and checks with short timeouts.

Checks are coroutines run side by side, each bounded by a timeout; a failing one says what
fails and what to do, and the report is the JSON body of `/readyz`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
from bend.core.errors import BendError
from bend.kafka import clients
from bend.settings import KafkaSettings

__all__ = [
    "Check", "CheckResult", "Heartbeat", "NotReady", "Readiness", "assignment_check",
    "kafka_check", "postgres_check", "run_checks", "writable_dir_check",
]

Check = Callable[[], Awaitable[str]]  # the detail when it passes; raises when it fails


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: passed or not, what it found, how long it took."""

    ok: bool
    detail: str
    ms: float


@dataclass(frozen=True, slots=True)
class Readiness:
    """Every check's result; ready when all passed."""

    checks: Mapping[str, CheckResult]

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks.values())

    def body(self) -> dict[str, Any]:
        """The JSON body of `/readyz`."""
        return {"ready": self.ready, "checks": {k: asdict(v) for k, v in self.checks.items()}}


class NotReady(Exception):
    """A readiness check failed; the message says what fails and what to do."""


async def _timed(check: Check, timeout_s: float) -> CheckResult:
    started = time.perf_counter()
    try:
        detail, ok = await asyncio.wait_for(check(), timeout_s), True
    except TimeoutError:
        detail, ok = f"no answer in {timeout_s:g} s", False
    except Exception as err:  # any dependency's own error: report it, never crash the probe
        detail, ok = str(err) or type(err).__name__, False
        if not isinstance(err, (NotReady, BendError)):  # those say what to do already
            detail = f"{type(err).__name__}: {detail}"
    return CheckResult(ok, detail, round((time.perf_counter() - started) * 1000, 1))


async def run_checks(checks: Mapping[str, Check], timeout_s: float) -> Readiness:
    """Run every check at once, each bounded by `timeout_s`."""
    names = list(checks)
    results = await asyncio.gather(*(_timed(checks[n], timeout_s) for n in names))
    return Readiness(dict(zip(names, results, strict=False)))


def kafka_check(kafka: KafkaSettings, timeout_s: float) -> Check:
    """Kafka answers a metadata request at `kafka.bootstrap` (with its TLS and login)."""
    bootstrap = kafka.bootstrap

    async def check() -> str:
        client = clients.client(kafka, client_id="bend-readyz",
                                request_timeout_ms=max(int(timeout_s * 1000), 100))
        try:
            await client.bootstrap()
            brokers = len(client.cluster.brokers())
        except Exception as err:
            why = await clients.refusal(kafka) if kafka.security_protocol != "PLAINTEXT" else None
            if why:
                raise NotReady(f"Kafka at {bootstrap} refuses this client: {why}") from err
            raise NotReady(f"Kafka at {bootstrap} does not answer ({type(err).__name__}: "
                           f"{err}); check BEND_KAFKA__BOOTSTRAP and the brokers") from err
        finally:
            await client.close()
        return f"{brokers} broker(s) answer at {bootstrap}"

    return check


def postgres_check(url: str, timeout_s: float) -> Check:
    """Postgres at `url` accepts a connection and answers `SELECT 1`."""

    async def check() -> str:
        try:
            conn = await asyncpg.connect(url, timeout=timeout_s)
        except Exception as err:
            raise NotReady(f"Postgres at {_where(url)} refuses connections "
                           f"({type(err).__name__}: {err}); check BEND_DATABASE_URL and the "
                           "server") from err
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close(timeout=timeout_s)
        return f"answers at {_where(url)}"

    return check


def assignment_check(group: str, assigned: Callable[[], Collection[tuple[str, int]]]) -> Check:
    """The process has joined consumer group `group` and holds at least one partition."""

    async def check() -> str:
        partitions = assigned()
        if not partitions:
            raise NotReady(f"no partition of group {group} is assigned to this process yet "
                           "(joining, rebalancing, or more members than partitions)")
        return f"{len(partitions)} partition(s) of group {group}"

    return check


def writable_dir_check(path: Path, setting: str) -> Check:
    """A file can be written (and synced) in directory `path`, made if missing; `setting` is
    the variable naming it."""

    def probe() -> None:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".readyz-", suffix=".tmp") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())

    async def check() -> str:
        try:
            await asyncio.to_thread(probe)
        except OSError as err:
            raise NotReady(f"cannot write to {path} ({type(err).__name__}: {err}); mount it "
                           f"read-write or point {setting} elsewhere") from err
        return f"{path} is writable"

    return check


def _where(url: str) -> str:
    """host:port/db of a database URL, without its credentials."""
    return url.split("@", 1)[-1].split("?", 1)[0]


class Heartbeat:
    """The event loop beats it; liveness fails when it has not beaten for `stall_after_s`."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._last = time.monotonic()

    def beat(self) -> None:
        """The loop is running."""
        self._last = time.monotonic()

    def since_s(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - self._last

    def live(self) -> bool:
        """Whether the loop beat recently enough."""
        return self.since_s() < self.stall_after_s

    async def run(self, every_s: float = 1.0) -> None:
        """Beat every `every_s` until cancelled (run it as a task on the loop it watches)."""
        while True:
            self.beat()
            await asyncio.sleep(every_s)
