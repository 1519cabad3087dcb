"""Triggers and bulk runs as a user drives them with `bend`, on the real stack (orchestrator,
executor and triggers processes, the API and projector processes): bulk with a bound on
concurrency, a polling trigger against a failing local server (its failures in the API and the
CLI, its back-off and its request budget), and `bend triggers errors|backfill|replay`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.api_latency import ServedApi, served_api
from bend.core.events import Event, RunStarted
from bend.devstack.engine import Engine, running_engine
from bend.devstack.workers import Workers
from bend.runwatch import TERMINAL, RunWatcher
from streams.triggers.pacing import next_backoff
from tests.e2e.test_cli import bend, field, table, write

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

NAPPER = """
name: napper
steps:
  - {id: nap, type: delay, duration: 1s}
  - {id: greet, type: transform, expression: "join(' ', ['hello', input.who])", after: [nap]}
"""
PLAIN = """
name: plain
steps:
  - {id: echo, type: transform, expression: input}
"""


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[tuple[Engine, ServedApi]]:
    with running_engine() as engine, served_api(engine.settings) as served:
        workers = Workers(engine.settings, env=dict(engine.env),
                          log_dir=engine.workers.log_dir)
        try:
            workers.start("triggers")
            yield engine, served
        finally:
            workers.stop()


@pytest.fixture(scope="module")
def served(stack: tuple[Engine, ServedApi]) -> ServedApi:
    return stack[1]


def _apply(served: ServedApi, tmp_path: Path, text: str) -> None:
    r = bend(served, "workflows", "apply", write(tmp_path, "wf.yaml", text))
    assert r.exit_code == 0, r.output


def _add(served: ServedApi, tmp_path: Path, workflow: str, definition: dict[str, Any]) -> str:
    r = bend(served, "triggers", "add", workflow, write(tmp_path, "trigger.json",
                                                       json.dumps(definition)), "--json")
    assert r.exit_code == 0, r.output
    return str(json.loads(r.stdout)["trigger_id"])


def _state(served: ServedApi, trigger_id: str) -> dict[str, Any]:
    r = bend(served, "triggers", "show", trigger_id, "--json")
    assert r.exit_code == 0, r.output
    return dict(json.loads(r.stdout)["state"])


def _until_state(served: ServedApi, trigger_id: str, ok: Any, timeout_s: float = 20) -> dict:
    deadline = time.monotonic() + timeout_s
    while not ok(state := _state(served, trigger_id)):
        assert time.monotonic() < deadline, f"trigger {trigger_id} state never matched: {state}"
        time.sleep(0.3)
    return state


def _max_in_flight(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one instant (a span ending when another starts is closed)."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans],
                   key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


# --- bulk with a bound on concurrency ---------------------------------------------------------


def test_bulk_with_concurrency_keeps_at_most_n_runs_in_flight_and_reports_each_outcome(
        stack: tuple[Engine, ServedApi], tmp_path: Path) -> None:
    engine, served = stack
    _apply(served, tmp_path, NAPPER)
    # Seven inputs; line 4 makes the transform fail (join of a number), after its nap.
    people = ['"ann"', '"bo"', '"cy"', "7", '"di"', '"ed"', '"flo"']
    lines = write(tmp_path, "people.jsonl", "".join(f'{{"who": {p}}}\n' for p in people))

    async def watched() -> tuple[Any, dict[str, list[Event]]]:
        async with RunWatcher(engine.settings) as watcher:
            result = await asyncio.to_thread(bend, served, "runs", "bulk", "napper", lines,
                                             "--concurrency", "2", "--json")
            ran = json.loads(result.stdout)["runs"]
            await watcher.wait_finished([r["run_id"] for r in ran], timeout_s=30)
            return result, dict(watcher.events)

    began = time.monotonic()
    r, events = asyncio.run(watched())
    took = time.monotonic() - began
    assert r.exit_code == 1, r.output  # one run failed
    assert "1 of 7 runs did not complete" in r.stderr
    out = json.loads(r.stdout)
    assert [(x["line"], x["status"]) for x in out["runs"]] == [
        (n, "failed" if n == 4 else "completed") for n in range(1, 8)]
    assert out["runs"][3]["reason"], out  # why it failed, from the run's error
    spans = []
    for x in out["runs"]:
        evs = events[x["run_id"]]
        started = next(e.occurred_at for e in evs if isinstance(e, RunStarted))
        ended = next(e.occurred_at for e in evs if isinstance(e, TERMINAL))
        spans.append((started, ended))
    most = _max_in_flight(spans)
    print(f"7 runs of a 1 s nap, concurrency 2: at most {most} in flight, {took:.1f} s")
    assert most == 2  # never more than 2, and the bound was used (not one at a time)
    assert took >= 3.5  # ceil(7 / 2) rounds of at least 1 s each

    # The table a person reads, with its refusal reason: a key reused with another input.
    key_file = write(tmp_path, "two.jsonl", '{"who": "gus"}\n{"who": "hal"}\n')
    first = bend(served, "runs", "bulk", "napper", key_file, "--concurrency", "1",
                 "--idempotency-key", "batch-a")
    assert first.exit_code == 0, first.output
    rows = table(first.stdout, "line")
    assert [rows[n][2] for n in ("1", "2")] == ["completed", "completed"]
    assert "2 runs of napper, at most 1 at once" in first.stdout
    clash = write(tmp_path, "clash.jsonl", '{"who": "gus"}\n{"who": "ivy"}\n')
    again = bend(served, "runs", "bulk", "napper", clash, "--concurrency", "3",
                 "--idempotency-key", "batch-a")
    assert again.exit_code == 1, again.output
    rows = table(again.stdout, "line")
    assert rows["1"][1] == table(first.stdout, "line")["1"][1]  # the same run, not a new one
    assert rows["1"][2] == "completed" and rows["2"][2] == "refused"
    assert "idempotency" in rows["2"][-1].lower()


def test_bulk_concurrency_out_of_range_is_a_usage_error(served: ServedApi,
                                                        tmp_path: Path) -> None:
    lines = write(tmp_path, "one.jsonl", '{"who": "a"}\n')
    r = bend(served, "runs", "bulk", "napper", lines, "--concurrency", "0")
    assert r.exit_code == 2 and "--concurrency" in r.output and "Usage:" in r.output


# --- a polling trigger against a failing server ----------------------------------------------


class _Flaky(BaseHTTPRequestHandler):
    failing = True
    hits: dict[str, list[float]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits.setdefault(self.path, []).append(time.monotonic())
        if type(self).failing:
            self.send_error(500)
            return
        body = b'{"items": [1]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[_Flaky]]]:
    _Flaky.failing, _Flaky.hits = True, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Flaky
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_failing_poll_is_recorded_backs_off_keeps_its_budget_and_recovers(
        served: ServedApi, tmp_path: Path, flaky: tuple[str, type[_Flaky]]) -> None:
    base, handler = flaky
    _apply(served, tmp_path, PLAIN)
    backoff = {"initial_seconds": 0.2, "multiplier": 2, "max_seconds": 1}
    polled = _add(served, tmp_path, "plain", {
        "type": "polling", "url": f"{base}/feed", "interval_seconds": 1, "backoff": backoff})
    budgeted = _add(served, tmp_path, "plain", {
        "type": "polling", "url": f"{base}/budget", "interval_seconds": 1,
        "max_requests_per_minute": 4, "backoff": {"initial_seconds": 0.2, "max_seconds": 0.2}})
    state = _until_state(served, polled, lambda s: s["error_count"] >= 3)
    assert state["last_error"] == f"poll: HTTP 500 from {base}/feed"
    assert state["fire_count"] == 0
    shown = bend(served, "triggers", "show", polled)
    assert field(shown.stdout, "last error") == f"poll: HTTP 500 from {base}/feed"
    listed = bend(served, "triggers", "errors", polled, "--limit", "2")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 2 and all(" poll " in row and "HTTP 500" in row for row in rows)
    time.sleep(4)  # the back-off reaches its cap; the budget is spent
    handler.failing = False
    state = _until_state(served, polled, lambda s: s["fire_count"] == 1)
    failing = handler.hits["/feed"][: state["error_count"]]
    errors_then = state["error_count"]
    time.sleep(3)  # it polls on (1 s apart) and fails no more
    after = _state(served, polled)
    assert after["error_count"] == errors_then and after["fire_count"] == 1
    assert after["last_error"].startswith("poll: HTTP 500")  # kept until the next failure
    assert len(handler.hits["/feed"]) - len(failing) >= 3

    # Back-off: each wait after a failure at least the next step of 0.2, 0.4, 0.8, 1, 1, ...
    gaps = [b - a for a, b in zip(failing, failing[1:], strict=False)]
    wanted, wait = [], 0.0
    for _ in gaps:
        wait = next_backoff(wait, 0.2, 2, 1)
        wanted.append(wait)
    assert all(g >= w - 0.02 for g, w in zip(gaps, wanted, strict=False)), (gaps, wanted)
    # The budget: 4 requests a minute however fast the back-off (0.2 s) would retry.
    budget_hits = handler.hits.get("/budget", [])
    print(f"failed polls {len(failing)} with gaps {[round(g, 2) for g in gaps]}; "
          f"budgeted trigger: {len(budget_hits)} requests in "
          f"{budget_hits[-1] - budget_hits[0]:.1f} s")
    assert len(budget_hits) == 4 and budget_hits[-1] - budget_hits[0] < 60
    assert _state(served, budgeted)["error_count"] == 4
    for trigger_id in (polled, budgeted):
        assert bend(served, "triggers", "remove", trigger_id).exit_code == 0


# --- bend triggers backfill | replay | errors ------------------------------------------------


def test_backfill_fires_past_due_times_once_and_refuses_bad_ranges(
        served: ServedApi, tmp_path: Path) -> None:
    _apply(served, tmp_path, PLAIN)
    trigger_id = _add(served, tmp_path, "plain", {
        "type": "schedule", "schedule": {"cron": "0 * * * *", "timezone": "Europe/Berlin"}})
    r = bend(served, "triggers", "backfill", trigger_id, "2026-01-01T00:00:00+01:00",
             "2026-01-01T03:00:00+01:00")
    assert r.exit_code == 0, r.output
    rows = {due: row for due, row in table(r.stdout, "due").items() if len(row) == 3}
    assert sorted(rows) == ["2025-12-31 23:00:00", "2026-01-01 00:00:00", "2026-01-01 01:00:00"]
    assert len(rows) == 3 and all(row[-1] == "started" for row in rows.values())
    assert "started 3 runs; 0 had fired before" in r.stdout
    _until_state(served, trigger_id, lambda s: s["fire_count"] >= 3)
    again = bend(served, "triggers", "backfill", trigger_id, "2026-01-01T02:00:00+01:00",
                 "2026-01-01T04:00:00+01:00", "--json")
    assert again.exit_code == 0, again.output
    assert [x["status"] for x in json.loads(again.stdout)["runs"]] == ["already_fired",
                                                                      "started"]
    capped = bend(served, "triggers", "backfill", trigger_id, "2026-01-02T00:00:00Z",
                  "2026-01-03T00:00:00Z", "--max-runs", "5")
    assert capped.exit_code == 2 and "error:" in capped.stderr, capped.output
    assert "holds more than 5 due times; narrow the range or raise the cap" in capped.stderr
    backwards = bend(served, "triggers", "backfill", trigger_id, "2026-01-03T00:00:00Z",
                     "2026-01-02T00:00:00Z")
    assert backwards.exit_code == 2 and "error:" in backwards.stderr, backwards.output
    no_zone = bend(served, "triggers", "backfill", trigger_id, "yesterday", "today")
    assert no_zone.exit_code == 2 and "Usage:" in no_zone.output
    assert "'yesterday' does not match the formats" in no_zone.output
    unknown = bend(served, "triggers", "backfill", "tr-nope", "2026-01-02T00:00:00Z",
                   "2026-01-02T01:00:00Z")
    assert unknown.exit_code == 3 and "tr-nope" in unknown.stderr
    kafka = _add(served, tmp_path, "plain", {"type": "kafka", "topic": "elsewhere"})
    wrong = bend(served, "triggers", "backfill", kafka, "2026-01-02T00:00:00Z",
                 "2026-01-02T01:00:00Z")
    assert wrong.exit_code == 4 and "schedule" in wrong.stderr, wrong.output
    for t in (trigger_id, kafka):
        bend(served, "triggers", "remove", t)


def test_replay_re_reads_a_topic_and_fires_again_only_when_forced(
        stack: tuple[Engine, ServedApi], tmp_path: Path) -> None:
    engine, served = stack
    topic = f"{engine.settings.kafka.topic_prefix}.cli-orders"
    admin = AdminClient({"bootstrap.servers": engine.settings.kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    _apply(served, tmp_path, PLAIN)
    trigger_id = _add(served, tmp_path, "plain", {"type": "kafka", "topic": topic,
                                                  "filter": "kind == 'order'"})
    time.sleep(3)  # it subscribes where the trigger took effect

    async def produce(values: list[bytes]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=engine.settings.kafka.bootstrap)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, partition=0)
        finally:
            await producer.stop()

    asyncio.run(produce([b'{"kind": "order", "n": 0}', b"not json", b'{"kind": "order"}']))
    _until_state(served, trigger_id, lambda s: s["fire_count"] == 2 and s["error_count"] == 1)
    errors = bend(served, "triggers", "errors", trigger_id)
    assert errors.exit_code == 0, errors.output
    assert f"{topic}/0/1" in errors.stdout and "decode" in errors.stdout
    assert "not JSON" in errors.stdout

    plain = bend(served, "triggers", "replay", trigger_id, "--from-offset", "0")
    assert plain.exit_code == 0, plain.output
    assert "re-reading every partition from offset 0" in plain.stdout
    time.sleep(4)  # the records fired before start nothing; the bad one fails again
    state = _until_state(served, trigger_id, lambda s: s["error_count"] == 2)
    assert state["fire_count"] == 2
    forced = bend(served, "triggers", "replay", trigger_id, "--from-offset", "2",
                  "--partition", "0", "--force")
    assert forced.exit_code == 0, forced.output
    assert "(forced: records fired before fire again)" in forced.stdout
    _until_state(served, trigger_id, lambda s: s["fire_count"] == 3)

    neither = bend(served, "triggers", "replay", trigger_id)
    assert neither.exit_code == 2
    assert "give one of --from-offset and --from-time" in neither.stderr
    negative = bend(served, "triggers", "replay", trigger_id, "--from-offset", "-1")
    assert negative.exit_code == 2 and "Usage:" in negative.output
    schedule = _add(served, tmp_path, "plain", {"type": "schedule",
                                                "schedule": {"cron": "0 0 1 1 *"}})
    not_kafka = bend(served, "triggers", "replay", schedule, "--from-offset", "0")
    assert not_kafka.exit_code == 4 and "kafka" in not_kafka.stderr.lower(), not_kafka.output
    none_found = bend(served, "triggers", "errors", schedule)
    assert none_found.exit_code == 0 and "no failures recorded" in none_found.stdout
    for t in (trigger_id, schedule):
        bend(served, "triggers", "remove", t)
