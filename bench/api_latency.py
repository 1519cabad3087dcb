"""API latency benchmark: start-run and get-run p50/p99 and requests/s over loopback.

    python -m bench.api_latency [--requests N] [--concurrency C] [--max-seconds T]

Starts the engine (orchestrator and executor processes), the projector and the API (uvicorn on
127.0.0.1) each in its own process, creates a one-step workflow, then runs the load from a
second process (`load`): N `POST /api/workflows/{id}/execute` at concurrency C, then N
`GET /api/executions/{run_id}` of those runs, stopping at T seconds whatever is left. Prints
JSON. The per-key and per-IP rate limits are lifted in the API process (the load is one key).
`served_api` (the API and projector processes) also serves the CLI's end-to-end tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bend.api.security import bootstrap_key
from bend.server.testing import drop_isolated, isolated_settings
from bend.devstack.engine import running_engine
from bend.devstack.workers import WorkerFailed, WorkerProcess
from bend.log import configure_logging
from bend.settings import Settings

__all__ = ["ServedApi", "load", "served_api"]

UNLIMITED = {"BEND_SECURITY__KEY_RATE_PER_S": "1000000", "BEND_SECURITY__KEY_BURST": "1000000",
             "BEND_SECURITY__IP_RATE_PER_S": "1000000", "BEND_SECURITY__IP_BURST": "1000000"}
WORKFLOW = {"name": "latency_probe", "input_schema": {"type": "object", "required": ["n"]},
            "steps": [{"id": "echo", "type": "transform", "mapping": {"n": "input.n"}}]}


@dataclass
class ServedApi:
    """The API and projector processes of one set of settings, and an admin key."""

    url: str
    admin_key: str
    settings: Settings
    processes: list[WorkerProcess] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        """Headers authenticating as the admin."""
        return {"Authorization": f"Bearer {self.admin_key}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(role: str, argv: list[str], env: dict[str, str], log_dir: Path) -> WorkerProcess:
    log_path = log_dir / f"{role}.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen([sys.executable, *argv], env={**os.environ, **env},
                                stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return WorkerProcess(role, proc, log_path)


def _wait_healthy(url: str, api: WorkerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not api.alive():
            raise WorkerFailed("api", f"exited with code {api.process.returncode}", api.log_path)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise WorkerFailed("api", f"did not answer on {url} in {timeout_s:.0f} s", api.log_path)


@contextlib.contextmanager
def served_api(base: Settings, *, env: dict[str, str] | None = None,
               timeout_s: float = 60.0) -> Iterator[ServedApi]:
    """The API (`python -m bend.server serve`) and projector processes on `base`'s topics, with a
    read-model schema of their own (dropped after) and an admin key; stopped by their PIDs."""
    settings = isolated_settings(base, prefix=base.kafka.topic_prefix,
                                 partitions=base.kafka.default_partitions)
    prefix = settings.kafka.topic_prefix
    admin_key = asyncio.run(bootstrap_key(settings))
    assert admin_key is not None, f"project {settings.project} of {prefix} has an admin already"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    child_env = {"BEND_KAFKA__TOPIC_PREFIX": prefix,
                 "BEND_KAFKA__DEFAULT_PARTITIONS": str(settings.kafka.default_partitions),
                 "BEND_DATABASE__SCHEMA_NAME": settings.database.schema_name,
                 "BEND_LOG__FORMAT": "json", "BEND_LOG__LEVEL": "WARNING", **(env or {})}
    log_dir = settings.dev.state_dir / "logs" / prefix
    log_dir.mkdir(parents=True, exist_ok=True)
    served = ServedApi(url, admin_key, settings)
    try:
        served.processes.append(_spawn("projector", ["-m", "projections", "run"], child_env,
                                       log_dir))
        api = _spawn("api", ["-m", "bend.server", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], child_env, log_dir)
        served.processes.append(api)
        _wait_healthy(url, api, timeout_s)
        yield served
    finally:
        for proc in served.processes:
            proc.stop()
        asyncio.run(drop_isolated(settings, topics=False))


# --- the load, run in its own process ------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None


def _summary(name: str, latencies: list[float], errors: dict[str, int], seconds: float,
             planned: int) -> dict[str, Any]:
    return {"operation": name, "planned": planned, "ok": len(latencies),
            "errors": errors, "seconds": round(seconds, 2),
            "requests_per_s": round(len(latencies) / seconds, 1) if seconds else None,
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p90_ms": _pct(latencies, 0.90), "p99_ms": _pct(latencies, 0.99),
            "max_ms": round(max(latencies), 2) if latencies else None}


async def _phase(client: httpx.AsyncClient, name: str, requests: list[tuple[str, str, Any]],
                 concurrency: int, deadline: float,
                 keep: list[Any] | None = None) -> dict[str, Any]:
    """Send `requests` (method, path, json) with `concurrency` in flight, until `deadline`."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(requests)

    async def worker() -> None:
        for method, path, body in queue:
            if time.monotonic() >= deadline:
                return
            t0 = time.perf_counter()
            try:
                r = await client.request(method, path, json=body)
            except httpx.HTTPError as err:
                errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code < 300:
                latencies.append(elapsed)
                if keep is not None:
                    keep.append(r.json())
            else:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _summary(name, latencies, errors, time.perf_counter() - t0, len(requests))


async def load(url: str, key: str, workflow_id: str, requests: int, concurrency: int,
               max_seconds: float) -> list[dict[str, Any]]:
    """Start `requests` runs, then read each back; each phase's latency figures."""
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30, limits=limits) as client:
        warm = [("POST", f"/api/workflows/{workflow_id}/execute", {"input": {"n": -i}})
                for i in range(min(50, requests))]
        await _phase(client, "warm_up", warm, concurrency, deadline)
        accepted: list[Any] = []
        starts = [("POST", f"/api/workflows/{workflow_id}/execute", {"input": {"n": i}})
                  for i in range(requests)]
        start = await _phase(client, "start_run", starts, concurrency, deadline, accepted)
        if accepted:  # read what was started once the read models hold all of it
            newest: dict[tuple[str, int], dict[str, Any]] = {}
            for a in accepted:
                p = a["position"]
                if p["offset"] > newest.get((p["topic"], p["partition"]), {"offset": -1})["offset"]:
                    newest[(p["topic"], p["partition"])] = p
            await client.get("/api/executions", params={
                "limit": 1, "wait_for": [p["token"] for p in newest.values()], "wait_s": 30})
        reads = [("GET", f"/api/executions/{accepted[i % len(accepted)]['run_id']}", None)
                 for i in range(requests)] if accepted else []
        get = await _phase(client, "get_run", reads, concurrency, deadline)
    return [start, get]


# --- the whole bench -------------------------------------------------------------------------


def _bench(args: argparse.Namespace) -> dict[str, Any]:
    with running_engine() as engine, served_api(engine.settings, env=UNLIMITED) as served:
        r = httpx.post(f"{served.url}/api/workflows", json=WORKFLOW, headers=served.headers)
        r.raise_for_status()
        wf = r.json()
        httpx.get(f"{served.url}/api/workflows/{wf['workflow_id']}", headers=served.headers,
                  params={"wait_for": wf["position"]["token"]}).raise_for_status()
        argv = [sys.executable, "-m", "bench.api_latency", "load", "--url", served.url,
                "--workflow-id", wf["workflow_id"], "--requests", str(args.requests),
                "--concurrency", str(args.concurrency), "--max-seconds", str(args.max_seconds)]
        done = subprocess.run(argv, env={**os.environ, "BEND_BENCH_KEY": served.admin_key},
                              capture_output=True, text=True, timeout=args.max_seconds + 60)
        if done.returncode != 0:
            raise SystemExit(f"the load process failed ({done.returncode}):\n{done.stderr}")
        phases = json.loads(done.stdout)
    return {"requests": args.requests, "concurrency": args.concurrency,
            "max_seconds": args.max_seconds, "cpus": os.cpu_count(), "phases": phases}


def main() -> None:
    """`python -m bench.api_latency [--requests N] [--concurrency C] [--max-seconds T]`."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=["bench", "load"], default="bench")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--url", help="load: the API's URL")
    parser.add_argument("--workflow-id", help="load: the workflow to start")
    args = parser.parse_args()
    configure_logging("WARNING")  # stdout holds the JSON result only
    if args.mode == "load":
        key = os.environ["BEND_BENCH_KEY"]  # not in argv: process listings show argv
        print(json.dumps(asyncio.run(load(args.url, key, args.workflow_id, args.requests,
                                          args.concurrency, args.max_seconds))))
        return
    print(json.dumps(_bench(args), indent=2))


if __name__ == "__main__":
    main()
