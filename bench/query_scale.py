"""Query API at scale: list/get latencies with 1,000,000 runs in the read models.

    python -m bench.query_scale [--runs N] [--requests R] [--max-seconds T]

`fill` builds the fixture (no committed data): N runs over 50 workflows in 20 projects (the
bench's key sees the 'default' project's 3 workflows, 6% of the runs), every status, one run
in ten with four steps, their attempts and 14 run events, inserted by Postgres itself
(INSERT ... SELECT generate_series, one statement per table, indexes built after). The API
(uvicorn on 127.0.0.1, its own process) then serves one client, which times each list with
every filter the API offers and a cursor deep in the list, a run with its steps, a run's
events, the workflow pages, and the UI's runs list and run page (p50/p99 over R requests). The
list queries are also EXPLAINed (ANALYZE). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

from bench.api_latency import UNLIMITED, served_api
from bench.ui_runs_list import explain
from bend.api.paging import after_cursor
from bend.server.testing import drop_isolated, isolated_settings
from bend.log import configure_logging
from bend.settings import Settings, get_settings
from projections.db import database_url
from projections.migrate import migrate
from projections.queries.paging import encode_cursor

__all__ = ["fill", "main"]

_PROJECT = "CASE WHEN {w} % 20 = 0 THEN 'default' ELSE 'project-' || ({w} % 20) END"
_DEFINITION = json.dumps({"name": "scaled", "steps": [
    {"id": f"s{i}", "type": "transform", "mapping": {"n": "input.n"},
     **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(4)]})
_STATUS = ("(ARRAY['completed','completed','completed','completed','completed','failed',"
           "'running','cancelled','pending','queued'])[1 + (g * 7 + g / 13) % 10]")
_AT = "(now() - (g * interval '1 second' * 2592000 / $1))"

_FILL = [
    f"""INSERT INTO workflows (workflow_id, name, description, status, latest_version, tenant,
                           project, created_at, updated_at)
    SELECT 'wf-' || w, 'workflow_' || w, 'seeded for the query-scale bench', 'active', 1,
           'default', {_PROJECT.format(w='w')}, now() - interval '40 days',
           now() - interval '40 days'
    FROM generate_series(0, 49) AS w""",
    f"""INSERT INTO workflow_versions (workflow_id, version, definition, definition_hash,
                                   created_at, event_id)
    SELECT 'wf-' || w, 1, '{_DEFINITION}'::jsonb, md5(w::text), now() - interval '40 days',
           md5('version' || w)
    FROM generate_series(0, 49) AS w""",
    f"""INSERT INTO runs (run_id, workflow_id, workflow_version, status, input, output, definition,
                      tenant, project, requested_at, started_at, finished_at, duration_ms,
                      trigger_id, last_seq, error_type, error_message, failed_step_id,
                      last_event_at)
    SELECT md5('run' || g)::uuid::text, 'wf-' || (g % 50), 1, {_STATUS},
           jsonb_build_object('n', g), jsonb_build_object('result', g),
           CASE WHEN g % 10 = 0 THEN '{_DEFINITION}'::jsonb END, 'default',
           {_PROJECT.format(w='(g % 50)')}, {_AT}, {_AT} + interval '40 ms',
           {_AT} + interval '2 s', 1960,
           CASE WHEN g % 7 = 0 THEN 'trigger-' || (g / 7 % 3) END, 14,
           CASE WHEN (g * 7 + g / 13) % 10 = 5 THEN 'StepFailed' END,
           CASE WHEN (g * 7 + g / 13) % 10 = 5 THEN 'the model said no' END,
           CASE WHEN (g * 7 + g / 13) % 10 = 5 THEN 's3' END, {_AT} + interval '2 s'
    FROM generate_series(1, $1) AS g""",
    f"""INSERT INTO steps (run_id, step_id, node_type, status, attempts, input, output,
                       worker_id, scheduled_at, started_at, finished_at, duration_ms)
    SELECT md5('run' || g)::uuid::text, 's' || s, 'transform', 'succeeded', 1,
           jsonb_build_object('n', g), jsonb_build_object('n', g, 'step', s), 'w1',
           {_AT} + s * interval '400 ms', {_AT} + s * interval '400 ms' + interval '5 ms',
           {_AT} + s * interval '400 ms' + interval '15 ms', 10
    FROM generate_series(10, $1, 10) AS g, generate_series(0, 3) AS s""",
    f"""INSERT INTO step_attempts (run_id, step_id, attempt, status, input, output, worker_id,
                               idempotency_key, scheduled_at, started_at, finished_at,
                               duration_ms)
    SELECT md5('run' || g)::uuid::text, 's' || s, 1, 'succeeded', jsonb_build_object('n', g),
           jsonb_build_object('n', g, 'step', s), 'w1', md5('run' || g) || '/s' || s || '/1',
           {_AT} + s * interval '400 ms', {_AT} + s * interval '400 ms' + interval '5 ms',
           {_AT} + s * interval '400 ms' + interval '15 ms', 10
    FROM generate_series(10, $1, 10) AS g, generate_series(0, 3) AS s""",
    f"""INSERT INTO run_events (event_id, run_id, seq, event_type, step_id, occurred_at, payload,
                            topic, partition, "offset")
    SELECT md5('event' || g || '/' || e), md5('run' || g)::uuid::text, e,
           CASE WHEN e = 1 THEN 'RunRequested' WHEN e = 2 THEN 'RunStarted'
                WHEN e = 14 THEN 'RunCompleted'
                ELSE (ARRAY['StepScheduled','StepStarted','StepSucceeded'])[1 + (e - 3) % 3] END,
           CASE WHEN e BETWEEN 3 AND 13 THEN 's' || ((e - 3) / 3) END,
           {_AT} + e * interval '100 ms', jsonb_build_object('seq', e, 'n', g),
           'bend.run-events', g % 3, g * 14 + e
    FROM generate_series(10, $1, 10) AS g, generate_series(1, 14) AS e""",
]


async def fill(settings: Settings, runs: int) -> dict[str, Any]:
    """Migrate the schema and fill it; rows per table, seconds, and the ids the bench reads."""
    conn = await asyncpg.connect(database_url(settings))
    schema = settings.database.schema_name
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await migrate(conn, schema)
        started = time.perf_counter()
        for sql in _FILL:
            await conn.execute(sql, runs) if "$1" in sql else await conn.execute(sql)
        await conn.execute("ANALYZE")
        seconds = time.perf_counter() - started
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                  for t in ("runs", "steps", "step_attempts", "run_events")}
        mine = await conn.fetchval("SELECT count(*) FROM runs WHERE project = 'default'")
        deep = await conn.fetchrow(
            "SELECT requested_at, run_id FROM runs WHERE project = 'default' "
            "ORDER BY requested_at DESC, run_id DESC OFFSET $1 LIMIT 1", int(mine * 0.9))
        middle = await conn.fetchval(
            "SELECT requested_at FROM runs WHERE project = 'default' ORDER BY requested_at "
            "OFFSET $1 LIMIT 1", mine // 2)
        stepped = await conn.fetchval(
            "SELECT r.run_id FROM runs r JOIN steps s USING (run_id) WHERE r.project = "
            "'default' ORDER BY r.requested_at DESC LIMIT 1")
    finally:
        await conn.close()
    return {"rows": counts, "default_project_runs": mine, "fill_seconds": round(seconds, 1),
            "deep": deep, "middle": middle, "stepped_run": stepped}


async def _time(url: str, key: str, paths: dict[str, str], requests: int,
                deadline: float) -> dict[str, Any]:
    """p50/p99 of each path, one request at a time (API paths with the key, UI signed in)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as ui, \
            httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as api:
        r = await ui.post("/ui/login", data={"credential": key})
        assert r.status_code == 303, r.text
        out = {}
        for name, path in paths.items():
            client = ui if path.startswith("/ui/") else api
            r = await client.get(path)  # warm: plans, templates, connections
            assert r.status_code == 200, (name, r.status_code, r.text[:300])
            times = []
            for _ in range(requests):
                if time.monotonic() >= deadline:
                    break
                t0 = time.perf_counter()
                r = await client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (name, r.status_code)
            ordered = sorted(times)
            out[name] = {"path": path, "requests": len(times),
                         "p50_ms": round(statistics.median(times), 1) if times else None,
                         "p99_ms": round(ordered[min(len(ordered) - 1,
                                                     int(0.99 * len(ordered)))], 1)
                         if times else None}
        return out


def _measure(base: Settings, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    filled = asyncio.run(fill(settings, args.runs))
    deep, middle, run = filled.pop("deep"), filled.pop("middle"), filled.pop("stepped_run")
    cursor = encode_cursor(deep["requested_at"], deep["run_id"])
    since = middle.isoformat()
    paths = {
        "list_runs": "/api/executions",
        "list_runs_workflow": "/api/executions?workflow_id=wf-20",
        "list_runs_status_failed": "/api/executions?status=failed",
        "list_runs_status_queued_running": "/api/executions?status=queued&status=running",
        "list_runs_workflow_status": "/api/executions?workflow_id=wf-40&status=cancelled",
        "list_runs_since": "/api/executions?" + urlencode({"since": since}),
        "list_runs_window": "/api/executions?" + urlencode(
            {"since": since, "until": (middle + timedelta(days=1)).isoformat()}),
        "list_runs_deep_cursor": "/api/executions?" + urlencode({"cursor": cursor}),
        "list_runs_limit_200": "/api/executions?limit=200",
        "get_run_with_steps": f"/api/executions/{run}",
        "run_events": f"/api/executions/{run}/events",
        "list_workflows": "/api/workflows",
        "get_workflow": "/api/workflows/wf-20",
        "ui_runs": "/ui/runs",
        "ui_runs_trigger": "/ui/runs?" + urlencode({"trigger": "trigger-1"}),
        "ui_runs_deep_cursor": "/ui/runs?" + urlencode({"cursor": cursor}),
        "ui_run_page": f"/ui/runs/{run}",
    }
    plans = asyncio.run(explain(settings, {
        "list_runs": {},
        "list_runs_workflow": {"workflow_id": "wf-20"},
        "list_runs_status_failed": {"statuses": ["failed"]},
        "list_runs_status_queued_running": {"statuses": ["queued", "running"]},
        "list_runs_workflow_status": {"workflow_id": "wf-40", "statuses": ["cancelled"]},
        "list_runs_since": {"since": middle},
        "list_runs_deep_cursor": {"after": after_cursor(cursor)},
        "ui_runs_trigger": {"trigger_id": "trigger-1"},
    }))
    deadline = time.monotonic() + args.max_seconds
    with served_api(base, env=UNLIMITED) as served:
        timed = asyncio.run(_time(served.url, served.admin_key, paths, args.requests, deadline))
    return {"benchmark": "query_scale", **filled, "latency": timed, "plans": plans}


def main(argv: list[str] | None = None) -> int:
    """Fill, serve, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100, help="per path")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    base = get_settings()
    prefix = f"qscale{uuid.uuid4().hex[:8]}"
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix, "default_partitions": 3})
    base = base.model_copy(update={"kafka": kafka})
    settings = isolated_settings(base, prefix=prefix, partitions=3)
    try:
        report = _measure(base, settings, args)
    finally:
        asyncio.run(drop_isolated(settings))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
