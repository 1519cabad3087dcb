"""Run Bend's Faust roles (orchestrator, executor, triggers) in this process until stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from bend.contracts import codec
from bend.contracts.admin import ensure_topics
from bend.settings import Settings

__all__ = ["ROLES", "run_worker", "watch_stalls"]

ROLES = ("orchestrator", "executor", "triggers")

log = structlog.get_logger(__name__)


def run_worker(roles: Sequence[str], settings: Settings) -> None:
    """Run each role (one Faust app, one consumer group) until SIGTERM/SIGINT.

    A role is one process: several roles start one child process each, so every role keeps
    its own consumer group however the processes are spread.
    """
    if len(roles) > 1:
        _run_children(roles)
        return
    _run_role(roles[0], settings)


def _run_children(roles: Sequence[str]) -> None:
    children = [subprocess.Popen([sys.executable, "-m", "streams.worker", role])  # noqa: S603
                for role in roles]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    if any(codes):
        raise SystemExit(max(codes))


def _run_role(role: str, settings: Settings) -> None:
    try:  # uvloop must be chosen before faust creates its loop (local-kafka.md: +20 % at C1)
        import mode.loop

        mode.loop.use("uvloop")
    except Exception:  # noqa: S110  # pragma: no cover - platforms without uvloop
        pass
    import faust

    from streams.app import create_app

    ensure_topics(settings)
    codec.configure(settings)  # every encode/decode of the role: the registry's framing or not
    codec.prime_blocking(settings)  # before the loop runs: no registration blocks it later
    worker_id = settings.workers.worker_id or f"{socket.gethostname()}:{os.getpid()}"
    app = create_app(role, settings)
    if role == "orchestrator":
        from streams.orchestrator import Orchestrator

        orchestrator = Orchestrator(app, settings)
        orchestrator.register()
        watch_stalls(app, settings, orchestrator.commands.get_topic_name(),
                      lambda: orchestrator.in_flight)
    elif role == "executor":
        from streams.executor import Executor

        executor = Executor(app, settings, worker_id)
        executor.register()
        watch_stalls(app, settings, executor.tasks.get_topic_name(),
                      lambda: executor.in_flight)
    elif role == "triggers":
        from streams.triggers.service import Triggers

        Triggers(app, settings).register()
    else:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if settings.workers.hop_profile_s and role in ("orchestrator", "executor"):
        from streams.hops import PROFILE

        PROFILE.enable(app, role, settings.workers.hop_profile_s)
    from streams.ops import attach_ops

    attach_ops(app, role, settings)  # /metrics, /livez, /readyz on BEND_OPS__HOST:PORT
    from bend.tracing import configure_tracing

    configure_tracing(settings, role)  # traces to BEND_TRACING__OTLP_ENDPOINT when it is set

    # faust's App.timer returns a bare Callable (its decorator is untyped).
    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def _exit_when_crashed() -> None:
        # A crashed Faust service keeps its partitions while it processes nothing; leave, so
        # the group moves them and the supervisor (Kubernetes, `Workers`) starts a new one.
        if app._crashed.is_set():  # noqa: SLF001 - mode's crash flag
            log.error("worker_crashed_exiting", reason=repr(app.crash_reason))
            os._exit(70)

    from bend.ops.collector import freeze_startup

    # A full collection walked the imports' and the app's ~170,000 objects: 60-200 ms with
    # every decision waiting on it. Frozen, it walks only what the role made since.
    frozen = freeze_startup()
    log.info("worker_starting", role=role, worker_id=worker_id, pid=os.getpid(),
             frozen_objects=frozen)
    worker = faust.Worker(app, loglevel="info", quiet=True, redirect_stdouts=False,
                          override_logging=False)
    worker.execute_from_commandline()


def watch_stalls(app: Any, settings: Settings, topic: str, busy: Callable[[], int]) -> None:
    """Re-read a partition the worker holds but stopped reading (see streams/stall.py)."""
    if not settings.workers.stall_check_s:
        return
    from streams.stall import StallWatch

    watch = StallWatch(app, app.conf.id, topic, busy, settings.kafka,
                       settings.workers.partition_stall_after_s)

    # faust's App.timer returns a bare Callable (its decorator is untyped).
    @app.timer(settings.workers.stall_check_s, name="stall-watch")  # type: ignore[untyped-decorator]
    async def _check_stalls() -> None:
        try:
            await watch.check()
        except Exception as err:  # rebalancing, Kafka away: look again next time
            log.debug("stall_check_skipped", error=repr(err))


if __name__ == "__main__":
    from bend.log import configure_logging
    from bend.settings import get_settings

    configure_logging(get_settings().log.level, get_settings().log.format)
    run_worker(sys.argv[1:], get_settings())
