"""Start and stop Bend's worker processes (orchestrator, executor) for local runs and tests.

Ready means Kafka says so: the role's consumer group is Stable with the expected members.
Processes are stopped by the PIDs started here (SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import ConsumerGroupState

from bend.core.errors import BendError
from bend.kafka import clients
from bend.settings import Settings

__all__ = ["WorkerFailed", "WorkerProcess", "Workers", "ops_url_from_log"]


class WorkerFailed(BendError):
    """A worker process exited or did not join its consumer group in time."""

    def __init__(self, role: str, detail: str, log_path: Path) -> None:
        super().__init__(f"{role} worker {detail}; see its log at {log_path}")
        self.role = role


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies (Linux), even by SIGKILL,
    so a test or bench killed mid-way leaves no worker behind consuming its topics."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


@dataclass
class WorkerProcess:
    """One running worker: its role, process and log file."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def ops_url(self, timeout_s: float = 30.0) -> str:
        """`http://host:port` of the worker's ops server (/metrics, /livez, /readyz)."""
        return ops_url_from_log(self.log_path, self.process, self.role, timeout_s)

    def kill(self) -> None:
        """SIGKILL: the crash a test simulates."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s`."""
        self.terminate()
        self.wait_or_kill(grace_s)

    def terminate(self) -> None:
        """SIGTERM, if it runs: it leaves its group and flushes, then exits."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, grace_s: float) -> None:
        """Wait up to `grace_s` for it to exit, then SIGKILL it."""
        try:
            self.process.wait(timeout=max(grace_s, 0.01))
        except subprocess.TimeoutExpired:
            self.kill()


# The local stack's processes may reach loopback (its scripted model, test servers): production
# workers refuse it by default (bend.settings.EgressSettings). A value set by the user wins.
LOCAL_EGRESS = {"BEND_EGRESS__ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]'}


# Local executors also run the stdio MCP servers definitions name (production ones refuse).
LOCAL_MCP = {"BEND_MCP__ALLOW_STDIO": "true"}


def local_env() -> dict[str, str]:
    """What the local stack adds to its processes' environment, unless already set."""
    return {k: v for k, v in {**LOCAL_EGRESS, **LOCAL_MCP}.items() if k not in os.environ}


@dataclass
class Workers:
    """The worker processes started for one set of settings (`env` overrides BEND_* variables)."""

    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    processes: list[WorkerProcess] = field(default_factory=list)

    def start(self, role: str, wait: bool = True, timeout_s: float = 60.0) -> WorkerProcess:
        """Start one `role` process; with `wait`, return once its group has it as a member."""
        log_dir = self.log_dir or self.settings.dev.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        index = sum(1 for p in self.processes if p.role == role)
        log_path = log_dir / f"{self.settings.kafka.topic_prefix}-{role}-{index}.log"
        # Port 0: each worker's ops server takes a free port and logs it (see ops_url).
        env = {**os.environ, **local_env(), "BEND_OPS__PORT": "0", **self.env,
               "BEND_LOG__FORMAT": "json"}
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "streams.worker", role], env=env,
                                    stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        worker = WorkerProcess(role, proc, log_path)
        self.processes.append(worker)
        if wait:
            self.wait_ready(role, timeout_s)
        return worker

    def wait_ready(self, role: str, timeout_s: float = 60.0) -> None:
        """Block until `role`'s consumer group is Stable with every live process of the role."""
        group = f"{self.settings.kafka.topic_prefix}-{role}"
        want = sum(1 for p in self.processes if p.role == role and p.alive())
        admin = clients.confluent_admin(self.settings.kafka)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.role == role and not p.alive():
                    raise WorkerFailed(role, f"exited with code {p.process.returncode}",
                                       p.log_path)
            try:
                desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
                if desc.state == ConsumerGroupState.STABLE and len(desc.members) >= want:
                    return
            except Exception:  # noqa: S110 - the group does not exist until the first member joins
                pass
            time.sleep(0.2)
        last = next(p for p in reversed(self.processes) if p.role == role)
        raise WorkerFailed(role, f"did not join consumer group {group} in {timeout_s:.0f} s",
                           last.log_path)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop every process started here: SIGTERM to all at once (each takes about a second
        and a half to leave its group and flush), then SIGKILL to any still running after
        `grace_s`."""
        for p in self.processes:
            p.terminate()
        deadline = time.monotonic() + grace_s
        for p in self.processes:
            p.wait_or_kill(deadline - time.monotonic())
        self.processes.clear()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def ops_url_from_log(log_path: Path, process: subprocess.Popen[bytes], role: str,
                     timeout_s: float = 30.0) -> str:
    """The ops server address a Bend process logged (`ops_listening`, JSON logs) at start."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            lines = log_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            if '"ops_listening"' in line:
                try:
                    return str(json.loads(line)["url"])
                except (ValueError, KeyError):
                    pass
        if process.poll() is not None:
            raise WorkerFailed(role, f"exited with code {process.returncode} before its ops "
                               "server listened", log_path)
        time.sleep(0.1)
    raise WorkerFailed(role, f"logged no ops_listening in {timeout_s:.0f} s (BEND_OPS__ENABLED "
                       "false?)", log_path)
