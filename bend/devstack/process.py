"""Detached processes, PID files and ports of the local stack (POSIX only)."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bend.devstack.errors import PortTaken

__all__ = [
    "cmdline",
    "launch",
    "log_tail",
    "pid_alive",
    "read_pid",
    "require_free_port",
    "stop_pid",
]

# Popen objects of the processes this interpreter launched, so stopping one reaps it (no zombie
# that still looks alive) and no "still running" ResourceWarning fires while it serves.
_children: dict[int, subprocess.Popen[bytes]] = {}


def require_free_port(port: int, setting: str) -> None:
    """Raise PortTaken unless 127.0.0.1:port can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The servers bind with it too, so a port in TIME_WAIT after our own stop counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortTaken(port, setting) from exc
            raise


def launch(
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    die_with_parent: bool = False,
) -> int:
    """Start argv in its own session with output appended to log_path; return its PID.

    With `die_with_parent` (Linux), the process gets SIGKILL when this one dies, even by
    SIGKILL, so a test killed mid-way leaves no broker behind."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            user=user,
            start_new_session=True,  # outlives `bend dev up` and ignores its Ctrl-C
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    _children[proc.pid] = proc
    return proc.pid


def _die_with_parent() -> None:
    """In the child: ask Linux for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def read_pid(path: Path) -> int | None:
    """The PID in a PID file's first line, or None if absent or unreadable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """True if pid is a live process (a zombie child is reaped and counts as gone)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces ('' if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def stop_pid(pid: int, *, sig: int = signal.SIGTERM, grace_s: float = 20.0) -> bool:
    """Send sig, wait up to grace_s for the exit, then SIGKILL; True if it had to be killed."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return False
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 5.0  # SIGKILL cannot be ignored; this only bounds the wait
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file ('' if it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
