"""The `triggers` worker on the real stack: schedules, missed runs, polling and Kafka triggers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka.admin import AdminClient, NewTopic

from bend.contracts.codec import decode
from bend.contracts.topics import topic_name
from bend.core.commands import StartRun
from bend.core.definitions import parse_definition
from bend.core.events import RunCompleted, RunStarted, TriggerFired
from bend.core.triggers.schedules import ScheduleSpec, dedupe_key, due_times
from bend.devstack.engine import Engine, running_engine
from bend.devstack.workers import Workers
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from bend.security.roles import Principal, Role
from bend.triggering import events as triggering
from bend.triggering import records
from streams.triggers.book import partitions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

WORKFLOW: dict[str, Any] = {
    "name": "triggered",
    "steps": [{"id": "echo", "type": "transform", "expression": "input"}],
}
ADMIN = Principal(subject="test", project="default", role=Role.ADMIN)


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str) -> Iterator[Engine]:
    with running_engine(executors=0, partitions=2) as engine:
        yield engine


@pytest.fixture
def triggers(engine: Engine) -> Iterator[Workers]:
    workers = Workers(engine.settings, env=dict(engine.env),
                      log_dir=engine.workers.log_dir or engine.settings.dev.state_dir / "logs")
    try:
        yield workers
    finally:
        workers.stop()


async def _register(engine: Engine, definition: dict[str, Any]) -> tuple[str, str]:
    """A fresh workflow and a trigger on it; (workflow_id, trigger_id)."""
    workflow_id, trigger_id = f"wf-{uuid.uuid4().hex[:8]}", f"tr-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    async with RecordProducer(engine.settings) as producer:
        await producer.send(records.registered(parse_definition(WORKFLOW), workflow_id,
                                               "default", ADMIN, now))
        await producer.send(triggering.registered(trigger_id, definition, workflow_id, 1,
                                                  "default", ADMIN, now))
    return workflow_id, trigger_id


async def _remove(engine: Engine, workflow_id: str, trigger_id: str) -> None:
    row = {"workflow_id": workflow_id, "trigger_id": trigger_id}
    async with RecordProducer(engine.settings) as producer:
        await producer.send(triggering.removed(row, "default", ADMIN,
                                               datetime.now(timezone.utc)))


async def _read(engine: Engine, kind: str) -> list[Any]:
    """Every record of the `kind` topic, decoded, from its start to its current end."""
    topic = topic_name(kind, engine.settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=engine.settings.kafka.bootstrap,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions(consumer, topic)
        assert tps, f"topic {topic} not found"
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[Any, list[Any]] = {tp: [] for tp in tps}
        deadline = time.monotonic() + 30
        # Counted per partition, not by position(), which once reported the end too early.
        while any(len(out[tp]) < ends[tp] - begins[tp] for tp in tps):
            assert time.monotonic() < deadline, f"{topic} not read to its end in 30 s"
            batch = await consumer.getmany(timeout_ms=500)
            for tp, rs in batch.items():
                out[tp].extend(decode(r.value) for r in rs)
        return [record for tp in tps for record in out[tp]]
    finally:
        await consumer.stop()


async def _fired(engine: Engine, trigger_id: str) -> list[TriggerFired]:
    return [e for e in await _read(engine, "triggers")
            if isinstance(e, TriggerFired) and e.trigger_id == trigger_id]


async def _started(engine: Engine, trigger_id: str) -> list[StartRun]:
    return [c for c in await _read(engine, "commands")
            if isinstance(c, StartRun) and c.trigger_id == trigger_id]


async def _until(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_an_interval_schedule_fires_and_its_run_completes(
        engine: Engine, triggers: Workers) -> None:
    triggers.start("triggers")
    async with RunWatcher(engine.settings) as watcher:
        workflow_id, trigger_id = await _register(engine, {
            "type": "schedule", "schedule": {"interval_seconds": 2}, "input": {"n": 1}})
        fired = await _until(lambda: _fired(engine, trigger_id), 20)
        assert fired, "no TriggerFired within 20 s"
        first = fired[0]
        assert first.dedupe_key == dedupe_key(trigger_id, first.due_at)
        done = await watcher.wait_finished([first.run_id], timeout_s=30)
    await _remove(engine, workflow_id, trigger_id)
    assert isinstance(done[first.run_id], RunCompleted)
    assert done[first.run_id].output == {"echo": {"n": 1}}
    assert first.due_at.timestamp() % 2 == 0
    assert (first.occurred_at - first.due_at).total_seconds() < 3  # ticks are 0.5 s apart


async def test_two_scheduler_processes_fire_each_due_time_exactly_once(
        engine: Engine, triggers: Workers) -> None:
    triggers.start("triggers", wait=False)
    triggers.start("triggers", wait=False)
    triggers.wait_ready("triggers")
    workflow_id, trigger_id = await _register(engine, {
        "type": "schedule", "schedule": {"interval_seconds": 1}})
    await asyncio.sleep(8)
    triggers.processes[0].kill()  # the survivor takes over its partitions
    await asyncio.sleep(10)
    await _remove(engine, workflow_id, trigger_id)
    await asyncio.sleep(2)
    fired = await _fired(engine, trigger_id)
    starts = await _started(engine, trigger_id)
    keys = Counter(e.dedupe_key for e in fired)
    run_ids = {e.run_id for e in fired}
    started = Counter(e.run_id for e in await _read(engine, "runs")
                      if isinstance(e, RunStarted) and e.run_id in run_ids)
    dues = sorted(e.due_at for e in fired)
    assert len(keys) >= 12, keys
    assert set(started) == run_ids and set(started.values()) == {1}, started
    assert {s.run_id for s in starts} == run_ids
    gaps = {(b - a).total_seconds() for a, b in zip(sorted(set(dues)), sorted(set(dues))[1:], strict=False)}
    assert gaps == {1.0}, f"a due time was skipped: {sorted(gaps)}"
    late = sorted((e.occurred_at - e.due_at).total_seconds() for e in fired)
    print(f"due times {len(keys)}, TriggerFired records {len(fired)}, "
          f"StartRun records {len(starts)}, runs started {len(started)}, "
          f"lateness median {late[len(late) // 2]:.3f} s, max {late[-1]:.3f} s")


async def test_after_an_outage_catch_up_fires_the_latest_missed_runs_up_to_its_cap(
        engine: Engine, triggers: Workers) -> None:
    # Due every minute from 30 s after now: the worker, started with its clock 10 minutes
    # ahead, finds ten due times passed (the next is 30 s away on its clock).
    start_at = (datetime.now(timezone.utc) + timedelta(seconds=30)).replace(microsecond=0)
    spec = {"interval_seconds": 60, "start_at": start_at.isoformat(),
            "missed_policy": "catch_up", "max_catch_up": 3, "grace_seconds": 5}
    workflow_id, trigger_id = await _register(engine, {"type": "schedule", "schedule": spec})
    triggers.env["BEND_TRIGGERS__CLOCK_OFFSET_S"] = "600"
    triggers.start("triggers")
    await _until(lambda: _until_count(engine, trigger_id, 3), 20)
    await asyncio.sleep(3)
    fired = await _fired(engine, trigger_id)
    await _remove(engine, workflow_id, trigger_id)
    passed = due_times(ScheduleSpec.model_validate(spec), start_at,
                       start_at + timedelta(seconds=600))
    assert len(passed) == 10
    assert [e.due_at for e in fired] == passed[-3:], fired


async def test_a_cron_schedule_fires_at_the_minute(engine: Engine, triggers: Workers) -> None:
    now = datetime.now(timezone.utc)
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # The worker's clock runs 3 s before the next minute, so the test does not wait for it.
    offset = (minute - now).total_seconds() - 3
    triggers.env["BEND_TRIGGERS__CLOCK_OFFSET_S"] = str(offset)
    async with RunWatcher(engine.settings) as watcher:  # before the run can start and end
        workflow_id, trigger_id = await _register(engine, {
            "type": "schedule", "schedule": {"cron": "* * * * *"}, "input": {"cron": True}})
        triggers.start("triggers")
        fired = await _until(lambda: _fired(engine, trigger_id), 20)
        assert fired, "no TriggerFired within 20 s"
        done = await watcher.wait_finished([fired[0].run_id], timeout_s=30)
    await _remove(engine, workflow_id, trigger_id)
    assert [e.due_at for e in fired] == [minute]
    assert isinstance(done[fired[0].run_id], RunCompleted)


async def test_paused_schedules_and_paused_workflows_start_no_runs(
        engine: Engine, triggers: Workers) -> None:
    triggers.start("triggers")
    quiet_wf, quiet = await _register(engine, {
        "type": "schedule", "schedule": {"interval_seconds": 1, "paused": True}})
    paused_wf, on_paused = await _register(engine, {
        "type": "schedule", "schedule": {"interval_seconds": 1}})
    async with RecordProducer(engine.settings) as producer:
        await producer.send(records.status_changed("paused", paused_wf, 1, "default", ADMIN,
                                                   datetime.now(timezone.utc)))
    await asyncio.sleep(5)
    assert await _fired(engine, quiet) == []
    before = await _fired(engine, on_paused)  # at most the due time before the pause landed
    await asyncio.sleep(3)
    assert await _fired(engine, on_paused) == before and len(before) <= 1
    async with RecordProducer(engine.settings) as producer:
        await producer.send(records.status_changed("active", paused_wf, 1, "default", ADMIN,
                                                   datetime.now(timezone.utc)))
    assert await _until(lambda: _until_count(engine, on_paused, len(before) + 1), 10)
    await _remove(engine, quiet_wf, quiet)
    await _remove(engine, paused_wf, on_paused)


class _Feed(BaseHTTPRequestHandler):
    body = b'{"items": [1]}'
    hits = 0
    failures = 2  # the first polls fail: the poller backs off and tries again

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits += 1
        if type(self).failures > 0:
            type(self).failures -= 1
            self.send_error(503)
            return
        body = self.body  # once: the test may swap it while a request is answered
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[tuple[str, type[_Feed]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/items", _Feed
    finally:
        server.shutdown()


async def test_a_polling_trigger_fires_only_when_the_content_changes(
        engine: Engine, triggers: Workers, feed: tuple[str, type[_Feed]]) -> None:
    url, handler = feed
    triggers.start("triggers")
    workflow_id, trigger_id = await _register(engine, {
        "type": "polling", "url": url, "interval_seconds": 1, "input_mapping": "items",
        "backoff": {"initial_seconds": 0.2, "max_seconds": 1}})
    assert await _until(lambda: _fired(engine, trigger_id), 20)
    assert handler.failures == 0
    await asyncio.sleep(3)
    assert len(await _fired(engine, trigger_id)) == 1
    hits = handler.hits
    handler.body = b'{"items": [1, 2]}'
    await _until(lambda: _until_count(engine, trigger_id, 2), 15)
    triggers.stop()  # a restarted poller reads the last body's hash back: no repeat
    triggers.processes.clear()
    triggers.start("triggers")
    await asyncio.sleep(4)
    fired = await _fired(engine, trigger_id)
    await _remove(engine, workflow_id, trigger_id)
    assert handler.hits - hits >= 4  # it kept polling, before and after the restart
    assert [e.input for e in fired] == [[1], [1, 2]]


async def _until_count(engine: Engine, trigger_id: str, n: int) -> bool:
    return len(await _fired(engine, trigger_id)) >= n


async def test_a_kafka_trigger_fires_once_per_matching_record(
        engine: Engine, triggers: Workers) -> None:
    topic = f"{engine.settings.kafka.topic_prefix}.orders"
    admin = AdminClient({"bootstrap.servers": engine.settings.kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=15)
    triggers.start("triggers")
    async with RunWatcher(engine.settings) as watcher:
        workflow_id, trigger_id = await _register(engine, {
            "type": "kafka", "topic": topic, "filter": "kind == 'order'",
            "input_mapping": "{id: id}"})
        await asyncio.sleep(3)  # let it subscribe (it starts where the trigger took effect)
        producer = AIOKafkaProducer(bootstrap_servers=engine.settings.kafka.bootstrap)
        await producer.start()
        try:
            for i, kind in enumerate(["order", "refund", "order", "order", "ping"]):
                await producer.send_and_wait(topic, json.dumps({"id": i, "kind": kind}).encode(),
                                             key=str(i).encode())
            await producer.send_and_wait(topic, b"not json", key=b"x")
        finally:
            await producer.stop()
        await _until(lambda: _until_count(engine, trigger_id, 3), 20)
        triggers.stop()  # a restarted consumer resumes after its committed offsets
        triggers.processes.clear()
        triggers.start("triggers")
        producer = AIOKafkaProducer(bootstrap_servers=engine.settings.kafka.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b'{"id": 9, "kind": "order"}', key=b"9")
        finally:
            await producer.stop()
        await _until(lambda: _until_count(engine, trigger_id, 4), 20)
        await asyncio.sleep(3)
        fired = await _fired(engine, trigger_id)
        done = await watcher.wait_finished([e.run_id for e in fired], timeout_s=30)
    await _remove(engine, workflow_id, trigger_id)
    assert sorted(e.input["id"] for e in fired) == [0, 2, 3, 9]
    assert len({e.dedupe_key for e in fired}) == 4
    assert all(e.dedupe_key.startswith(f"{topic}/") for e in fired)
    assert all(isinstance(d, RunCompleted) for d in done.values())


def _dst_cases() -> list[tuple[str, dict[str, Any], int]]:
    """(name, schedule, due times expected) around each 2027 clock change in New York and
    Berlin: hourly over the change's night, and daily at the hour that is skipped or repeated."""
    from zoneinfo import ZoneInfo

    cases = []
    for zone, spring, fall, daily_fall in (("America/New_York", "2027-03-14", "2027-11-07",
                                            "30 1 * * *"),
                                           ("Europe/Berlin", "2027-03-28", "2027-10-31",
                                            "30 2 * * *")):
        tz = ZoneInfo(zone)
        for kind, day, hourly_count, daily in (("spring", spring, 5, "30 2 * * *"),
                                               ("fall", fall, 7, daily_fall)):
            night = datetime.fromisoformat(day).replace(tzinfo=tz)
            base = {"timezone": zone, "missed_policy": "catch_up", "max_catch_up": 100}
            cases.append((f"{zone} {kind} hourly", {
                **base, "cron": "0 * * * *", "start_at": night.isoformat(),
                "end_at": night.replace(hour=6).isoformat()}, hourly_count))
            cases.append((f"{zone} {kind} daily {daily}", {
                **base, "cron": daily, "start_at": (night - timedelta(days=1)).isoformat(),
                "end_at": (night + timedelta(days=2)).isoformat()}, 3))
    return cases


async def test_after_an_outage_catch_up_fires_each_due_time_across_dst_changes_once(
        engine: Engine, triggers: Workers) -> None:
    # The worker's clock stands after every change; the triggers took effect before them, so
    # the whole window was missed (an outage) and catch-up fires all of it.
    cases = _dst_cases()
    registered = [(name, spec, count, await _register(engine, {"type": "schedule",
                                                              "schedule": spec}))
                  for name, spec, count in cases]
    clock = datetime(2027, 11, 10, 12, tzinfo=timezone.utc)
    triggers.env["BEND_TRIGGERS__CLOCK_OFFSET_S"] = str(
        (clock - datetime.now(timezone.utc)).total_seconds())
    triggers.start("triggers")
    total = sum(count for _, _, count, _ in registered)

    async def all_fired() -> list[TriggerFired]:
        ids = {trigger_id for *_, (_, trigger_id) in registered}
        fired = [e for e in await _read(engine, "triggers")
                 if isinstance(e, TriggerFired) and e.trigger_id in ids]
        return fired if len(fired) >= total else []

    assert await _until(all_fired, 30), "not every due time fired within 30 s"
    await asyncio.sleep(2)  # and nothing more follows
    fired = await all_fired()
    for *_, (workflow_id, trigger_id) in registered:
        await _remove(engine, workflow_id, trigger_id)
    for name, spec, count, (_, trigger_id) in registered:
        dues = [e.due_at for e in fired if e.trigger_id == trigger_id]
        parsed = ScheduleSpec.model_validate(spec)
        expected = due_times(parsed, parsed.start_at, parsed.end_at)
        assert sorted(dues) == expected and len(set(dues)) == len(dues) == count, (name, dues)
        if "hourly" in name:  # absolute time: one each hour, none doubled or missing
            assert {(b - a) for a, b in zip(expected, expected[1:], strict=False)} == {timedelta(hours=1)}
        else:  # one a local day, the shifted day's at its first instant after/at the hour
            local = [d.astimezone(parsed.zone) for d in expected]
            assert len({d.date() for d in local}) == 3, (name, local)
            middle = local[1]
            want = (3, 0) if "spring" in name else (int(spec["cron"].split()[1]), 30)
            assert (middle.hour, middle.minute) == want, (name, local)
            if "fall" in name:
                assert middle.fold == 0 and middle.dst(), (name, local)  # the first 01:30
    print(f"{len(cases)} schedules, {len(fired)} due times caught up across DST changes")
