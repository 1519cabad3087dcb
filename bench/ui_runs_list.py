"""Web UI runs-list benchmark: page-load time with 100,000 runs in the read models.

    python -m bench.ui_runs_list [--runs N] [--requests R] [--max-seconds T]

Seeds N runs (20 workflows, six statuses, one in ten started by one of three triggers, a month
of request times) into a fresh read-model schema with one INSERT ... SELECT generate_series,
starts the API (uvicorn on 127.0.0.1, its own process) and the projector on it, signs in to the
UI, and times `GET /ui/runs` over HTTP: the first page, filtered pages (workflow + status,
trigger, a time range) and a page deep in the keyset cursor (past ~90% of the runs). Each query
the pages make is also EXPLAINed (ANALYZE) to show the plan's scans. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

from bench.api_latency import UNLIMITED, served_api
from bend.api.paging import after_cursor
from bend.server.testing import drop_isolated, isolated_settings
from bend.log import configure_logging
from bend.settings import Settings, get_settings
from projections.db import database_url
from projections.migrate import migrate
from projections.queries import runs as queries
from projections.queries.paging import encode_cursor

WORKFLOWS = 20
_SEED = """
INSERT INTO runs (run_id, workflow_id, workflow_version, status, tenant, project, requested_at,
                  started_at, finished_at, duration_ms, trigger_id, last_seq, error_type,
                  error_message, failed_step_id, last_event_at)
SELECT md5('run' || g)::uuid::text,
       'wf-' || (g % $2),
       1,
       (ARRAY['completed','completed','completed','completed','completed','failed','running',
              'cancelled','pending','queued'])[1 + (g * 7 + g / 13) % 10],
       'default', 'default',
       now() - (g * interval '1 second' * 2592000 / $1),
       now() - (g * interval '1 second' * 2592000 / $1) + interval '40 ms',
       now() - (g * interval '1 second' * 2592000 / $1) + interval '2 s',
       1960,
       CASE WHEN g % 10 = 0 THEN 'trigger-' || (g / 10 % 3)
            WHEN g % 5003 = 1 THEN 'trigger-rare' END,
       12,
       CASE WHEN (g * 7 + g / 13) % 10 = 5 THEN 'StepFailed' END,
       CASE WHEN (g * 7 + g / 13) % 10 = 5 THEN 'the model said no' END,
       CASE WHEN (g * 7 + g / 13) % 10 = 5 THEN 'research' END,
       now() - (g * interval '1 second' * 2592000 / $1) + interval '2 s'
FROM generate_series(1, $1) AS g
"""
_WORKFLOWS = """
INSERT INTO workflows (workflow_id, name, description, status, latest_version, tenant, project,
                       created_at, updated_at)
SELECT 'wf-' || w, 'workflow_' || w, 'seeded for the runs-list benchmark', 'active', 1,
       'default', 'default', now() - interval '40 days', now() - interval '40 days'
FROM generate_series(0, $1 - 1) AS w
"""


async def seed(settings: Settings, runs: int) -> dict[str, Any]:
    """Migrate the schema and insert `runs` runs and their workflows; seconds taken."""
    conn = await asyncpg.connect(database_url(settings))
    schema = settings.database.schema_name
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await migrate(conn, schema)
        t0 = time.perf_counter()
        await conn.execute(_WORKFLOWS, WORKFLOWS)
        await conn.execute(_SEED, runs, WORKFLOWS)
        await conn.execute("ANALYZE runs")
        seconds = time.perf_counter() - t0
        count = await conn.fetchval("SELECT count(*) FROM runs")
        deep = await conn.fetchrow("SELECT requested_at, run_id FROM runs WHERE project = "
                                   "'default' ORDER BY requested_at DESC, run_id DESC "
                                   "OFFSET $1 LIMIT 1", int(runs * 0.9))
        middle = await conn.fetchval("SELECT requested_at FROM runs ORDER BY requested_at "
                                     "OFFSET $1 LIMIT 1", runs // 2)
    finally:
        await conn.close()
    return {"runs": count, "seed_seconds": round(seconds, 2),
            "deep_cursor": encode_cursor(deep["requested_at"], deep["run_id"]),
            "middle": middle}


class _Explainer:
    """Stands in for a pool: EXPLAINs each query a read function sends, keeps the plans."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[dict[str, Any]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows = await self.conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        self.plans.append(json.loads(rows[0][0])[0])
        return []


def _scans(node: dict[str, Any]) -> list[str]:
    found = []
    if "Scan" in node["Node Type"] or node["Node Type"] == "Sort":
        found.append(f"{node['Node Type']}{' on ' + node['Index Name'] if 'Index Name' in node else ''}")
    for child in node.get("Plans", []):
        found += _scans(child)
    return found


async def explain(settings: Settings, cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each case's list_runs query plan: scans used and execution time."""
    conn = await asyncpg.connect(database_url(settings))
    try:
        await conn.execute(f'SET search_path TO "{settings.database.schema_name}"')
        out = {}
        for name, kwargs in cases.items():
            probe = _Explainer(conn)
            await queries.list_runs(probe, "default", limit=51, **kwargs)  # type: ignore[arg-type]
            plan = probe.plans[0]
            out[name] = {"scans": _scans(plan["Plan"]),
                         "execution_ms": round(plan["Execution Time"], 3)}
        return out
    finally:
        await conn.close()


async def time_pages(url: str, key: str, pages: dict[str, str], requests: int,
                     deadline: float) -> dict[str, Any]:
    """p50/p95 of each page over HTTP, one request at a time, as one signed-in user."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/ui/login", data={"credential": key})
        assert r.status_code == 303, r.text
        results = {}
        for name, path in pages.items():
            r = await client.get(path)  # warm: templates, plans, connections
            assert r.status_code == 200, (name, r.status_code, r.text[:300])
            rows = r.text.count('class="run-row"')
            times = []
            for _ in range(requests):
                if time.monotonic() >= deadline:
                    break
                t0 = time.perf_counter()
                r = await client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            ordered = sorted(times)
            results[name] = {
                "path": path, "rows": rows, "requests": len(times),
                "p50_ms": round(statistics.median(times), 1) if times else None,
                "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)
                if times else None,
                "max_ms": round(max(times), 1) if times else None}
        return results


@contextmanager
def _served(base: Settings) -> Iterator[Any]:
    with served_api(base, env=UNLIMITED) as served:
        yield served


def main(argv: list[str] | None = None) -> int:
    """Seed, serve, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40, help="per page")
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    base = get_settings()
    prefix = f"uibench{uuid.uuid4().hex[:8]}"
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix, "default_partitions": 3})
    base = base.model_copy(update={"kafka": kafka})
    settings = isolated_settings(base, prefix=prefix, partitions=3)
    try:
        report = _measure(base, settings, args)
    finally:
        asyncio.run(drop_isolated(settings))  # the schema and the topics
    print(json.dumps(report, indent=2, default=str))
    return 0


def _measure(base: Settings, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    seeded = asyncio.run(seed(settings, args.runs))
    deep = seeded.pop("deep_cursor")
    middle = seeded.pop("middle")
    since = middle.strftime("%Y-%m-%dT%H:%M:%S")
    pages = {
        "first_page": "/ui/runs",
        "filtered_workflow_status": "/ui/runs?" + urlencode({"workflow": "wf-7",
                                                              "status": "failed"}),
        "filtered_trigger": "/ui/runs?" + urlencode({"trigger": "trigger-1"}),
        "filtered_no_match": "/ui/runs?" + urlencode({"trigger": "no-such-trigger"}),
        "filtered_rare_trigger": "/ui/runs?" + urlencode({"trigger": "trigger-rare"}),
        "filtered_time_range": "/ui/runs?" + urlencode({"since": since}),
        "deep_cursor": "/ui/runs?" + urlencode({"cursor": deep}),
        "deep_cursor_filtered": "/ui/runs?" + urlencode({"cursor": deep, "status": "completed"}),
    }
    plans = asyncio.run(explain(settings, {
        "first_page": {},
        "filtered_workflow_status": {"workflow_id": "wf-7", "statuses": ["failed"]},
        "filtered_trigger": {"trigger_id": "trigger-1"},
        "filtered_no_match": {"trigger_id": "no-such-trigger"},
        "filtered_rare_trigger": {"trigger_id": "trigger-rare"},
        "filtered_time_range": {"since": middle},
        "deep_cursor": {"after": after_cursor(deep)},
        "deep_cursor_filtered": {"after": after_cursor(deep), "statuses": ["completed"]},
    }))
    deadline = time.monotonic() + args.max_seconds
    with _served(base) as served:
        timed = asyncio.run(time_pages(served.url, served.admin_key, pages, args.requests,
                                       deadline))
    return {"benchmark": "ui_runs_list", **seeded, "pages": timed, "plans": plans}


if __name__ == "__main__":
    sys.exit(main())
