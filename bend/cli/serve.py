"""`bend serve`: every Bend service on this machine in one command, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from bend.contracts.admin import ensure_topics
from bend.devstack.workers import Workers, local_env
from bend.settings import get_settings

__all__ = ["serve"]


@click.command("serve")
@click.option("--executors", default=1, show_default=True, help="Executor processes.")
@click.option("--model/--no-model", default=True, show_default=True,
              help="Also serve the scripted OpenAI-compatible model on 127.0.0.1.")
@click.option("--model-port", default=8700, show_default=True, type=click.IntRange(1, 65535),
              help="Its port (the example workflow's default llm_base_url names 8700).")
def serve(executors: int, model: bool, model_port: int) -> None:
    """Run the orchestrator, executors, triggers, projector, archiver, notifier, chainer, API (and
    scripted model) locally."""
    settings = get_settings()
    ensure_topics(settings)
    log_dir = settings.dev.state_dir / "logs" / "serve"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {"BEND_SECRET_LLM_API_KEY": os.environ.get("BEND_SECRET_LLM_API_KEY", "local"),
           **local_env()}  # the scripted model and the local stack are on loopback
    workers = Workers(settings, env=env, log_dir=log_dir)
    others: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, *args: str) -> None:
        with (log_dir / f"{name}.log").open("ab") as log_file:
            others.append((name, subprocess.Popen([sys.executable, "-m", *args],  # noqa: S603
                                                  env={**os.environ, **env},
                                                  stdout=log_file, stderr=subprocess.STDOUT,
                                                  start_new_session=True)))

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if model:
            start("model", "bend.devstack.llm_server", "--port", str(model_port))
        workers.start("orchestrator", wait=False)
        for _ in range(executors):
            workers.start("executor", wait=False)
        workers.start("triggers", wait=False)
        start("projector", "projections", "run")
        start("archiver", "bend.archive", "run")
        start("notifier", "streams.notifications", "run")
        start("chainer", "streams.chaining", "run")
        for role in ("orchestrator", "executor", "triggers"):
            workers.wait_ready(role)
        click.echo(f"orchestrator, {executors} executor(s) and the trigger scheduler ready; "
                   f"logs in {log_dir}")
        api = subprocess.Popen([sys.executable, "-m", "bend.server", "serve"],
                               env={**os.environ, **env})  # its first admin key shows here
        others.append(("api", api))
        click.echo(f"API on http://{settings.api.host}:{settings.api.port} (docs at /docs); "
                   "Ctrl-C stops everything")
        while not stopping:
            for name, proc in others:
                if proc.poll() is not None:
                    raise click.ClickException(f"{name} exited with {proc.returncode}; "
                                               f"see {log_dir / (name + '.log')}")
            time.sleep(0.5)
    finally:
        for _, proc in reversed(others):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in others:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        workers.stop()
