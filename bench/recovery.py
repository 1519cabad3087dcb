"""Recovery benchmark: time from assignment to the first decision, and the orchestrator's RSS,
with 100 k and 1 M run events of history in its partitions.

History is produced directly (encoded events of 10-step chain runs, all finished but a fixed
number left open half way, copied from one decided template with fresh ids), not by running
workflows. Then, per case, one orchestrator process starts alone on the partitions; each
partition gets a StartRun of a new run and a CompleteStep of an open run queued before it starts.
Figures: launch -> group Stable with it (assignment), assignment -> first decision (any
partition) and -> every partition's first decision, RSS after the probes (and its peak).

Cases:
- `before`: the code at `--before-ref` (a git ref, e.g. the commit before snapshots), run from
  a `git archive` copy: it folds every partition's whole log;
- `full`: this code with snapshots off (`BEND_WORKERS__SNAPSHOT_INTERVAL_S=0`);
- `after`: this code with a snapshot written first (by the orchestrator's own `PartitionMirror`
  over the log, as an orchestrator would) and a tail of `--tail` events produced after it.

`python -m bench.recovery [--events 100000 1000000] [--before-ref REF] [--cases ...]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from bench.engine import chain
from bend.contracts.admin import ensure_topics
from bend.contracts.codec import decode, encode
from bend.core.commands import CompleteStep, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import Event, RunRequested, StepScheduled, StepSucceeded
from bend.kafka import clients
from bend.settings import Settings, get_settings
from streams.app import topic_names
from streams.snapshots import PartitionMirror, Snapshotter

STEPS = 10
OPEN_RUNS = 200  # open runs in the history, whatever its size
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _template(finish: bool) -> tuple[str, list[Event]]:
    """One run of a STEPS-step chain decided to its end (or half way): (run_id, events)."""
    run_id = str(uuid.uuid4())
    defn = definition_json(parse_definition(chain(STEPS)))
    now = T0
    cmd: Any = StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-chain",
                        workflow_version=1, occurred_at=now, correlation_id=run_id,
                        definition=defn, input={})
    state, events = None, []
    for i in range(STEPS + 1):
        decision = decide(state, cmd, now)
        assert isinstance(decision, Accepted), decision
        state, events = decision.state, events + list(decision.events)
        scheduled = [e for e in decision.events if isinstance(e, StepScheduled)]
        if not scheduled or (not finish and i >= STEPS // 2):
            break
        now += timedelta(milliseconds=5)
        cmd = CompleteStep(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-chain",
                           workflow_version=1, occurred_at=now, step_id=scheduled[0].step_id,
                           attempt=scheduled[0].attempt, output={"ok": 1})
    return run_id, events


def _copies(payloads: list[bytes]):
    """The template's payloads with every id replaced by a fresh one (run id first)."""
    ids: dict[bytes, bytes] = {}

    def fresh(match: re.Match[bytes]) -> bytes:
        found = ids.get(match.group(0))
        if found is None:
            found = ids[match.group(0)] = str(uuid.uuid4()).encode()
        return found

    return [_UUID.sub(fresh, p) for p in payloads]


async def produce_history(settings: Settings, events: int,
                          open_count: int = OPEN_RUNS) -> dict[str, Any]:
    """Produce about `events` run events: `open_count` open runs, the rest finished runs."""
    names = topic_names(settings)
    partitions = settings.kafka.default_partitions
    _, done = _template(True)
    _, half = _template(False)
    done_p, half_p = [encode(e) for e in done], [encode(e) for e in half]
    producer = clients.producer(settings.kafka, acks=1,
                                linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    began = time.perf_counter()
    written = runs = 0
    open_runs: list[tuple[str, int, StepScheduled]] = []
    last_scheduled = [e for e in half if isinstance(e, StepScheduled)][-1]
    try:
        pending: list[Any] = []
        n_finished = max(0, (events - open_count * len(half_p)) // len(done_p))
        plan = [True] * n_finished
        step = max(1, n_finished // open_count) if n_finished and open_count else 1
        for i in range(open_count):  # open runs spread through the history
            plan.insert(min(len(plan), i * (step + 1)), False)
        for finished in plan:
            payloads = _copies(done_p if finished else half_p)
            key = _run_id_of(payloads[0])
            partition = runs % partitions
            for value in payloads:
                pending.append(await producer.send(names.run_events, value, key=key,
                                                   partition=partition))
            if not finished:
                open_runs.append((key.decode(), partition, last_scheduled))
            written += len(payloads)
            runs += 1
            if len(pending) > 20_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return {"events": written, "runs": runs, "open_runs": len(open_runs),
            "seconds": round(time.perf_counter() - began, 1), "open": open_runs}


def _run_id_of(payload: bytes) -> bytes:
    event = decode(payload)
    assert isinstance(event, Event) and event.run_id
    return event.run_id.encode()


async def write_snapshot(settings: Settings, events_per_round: int = 0) -> dict[str, Any]:
    """Snapshot every partition as an orchestrator's mirror would (lag 0): one round over the
    whole history, or a round every `events_per_round` events of a partition, a simulated
    second apart (ending now), as an orchestrator deciding that history would have written."""
    names = topic_names(settings)
    s = Snapshotter(settings.kafka, names.run_events, names.run_states)
    consumer = clients.consumer(settings.kafka, group_id=None,
                                enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    began = time.perf_counter()
    try:
        tps = [TopicPartition(names.run_events, p)
               for p in range(settings.kafka.default_partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
            s.mirrors[tp.partition] = PartitionMirror(tp.partition, 0, lag_ms=0)
            await s.claim(tp.partition)
        per_round = events_per_round or max(ends.values()) + 1
        rounds = max(ends.values()) // per_round + 1
        clock = {tp.partition: int(time.time() * 1000) - rounds * 1000 for tp in tps}
        since = {tp.partition: 0 for tp in tps}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for tp, records in batch.items():
                p = tp.partition
                for r in records:
                    if r.offset < ends[tp]:
                        s.mirrors[p].feed(r.offset, 0, r.key, r.value)
                        since[p] += 1
                        if since[p] >= per_round:
                            clock[p] += 1000
                            await s.write_rounds(clock[p], {p})
                            since[p] = 0
        await s.write_rounds(int(time.time() * 1000))
    finally:
        await s.close()
        await consumer.stop()
    return {"seconds": round(time.perf_counter() - began, 1)}


async def produce_tail(settings: Settings, events: int) -> int:
    """A tail after the snapshot: finished runs' events (snapshots lag the log by design)."""
    if events <= 0:
        return 0
    got = await produce_history(settings, events, open_count=0)
    return int(got["events"])


def _probes(settings: Settings, open_runs: list[tuple[str, int, StepScheduled]],
            tag: str) -> list[tuple[int, Any]]:
    """Per partition: a StartRun of a new run, and a CompleteStep of an open run."""
    defn = definition_json(parse_definition(chain(STEPS)))
    now = datetime.now(timezone.utc)
    out: list[tuple[int, Any]] = []
    for p in range(settings.kafka.default_partitions):
        run_id = f"{tag}-{p}-{uuid.uuid4()}"
        out.append((p, StartRun(event_id=str(uuid.uuid4()), run_id=run_id,
                                workflow_id="wf-chain", workflow_version=1, occurred_at=now,
                                correlation_id=run_id, definition=defn, input={})))
        mine = [o for o in open_runs if o[1] == p]
        if mine:
            run_id, _, scheduled = mine.pop(0)
            open_runs.remove((run_id, p, scheduled))
            out.append((p, CompleteStep(event_id=str(uuid.uuid4()), run_id=run_id,
                                        workflow_id="wf-chain", workflow_version=1,
                                        occurred_at=now, step_id=scheduled.step_id,
                                        attempt=scheduled.attempt, output={"ok": 1})))
    return out


def _rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def measure(settings: Settings, source: Path, env_extra: dict[str, str],
                  open_runs: list[tuple[str, int, StepScheduled]], tag: str,
                  log_path: Path) -> dict[str, Any]:
    """Start one orchestrator from `source`, probe each partition, time its first decisions."""
    names = topic_names(settings)
    partitions = settings.kafka.default_partitions
    probes = _probes(settings, open_runs, tag)
    expected = {(cmd.run_id, p) for p, cmd in probes}
    producer = clients.producer(settings.kafka, acks="all")
    watcher = clients.consumer(settings.kafka, group_id=None,
                               enable_auto_commit=False)
    await producer.start()
    await watcher.start()
    tps = [TopicPartition(names.run_events, p) for p in range(partitions)]
    watcher.assign(tps)
    for tp, end in (await watcher.end_offsets(tps)).items():
        watcher.seek(tp, end)
    for p, cmd in probes:
        await producer.send_and_wait(names.commands, encode(cmd), key=cmd.run_id.encode(),
                                     partition=p)
    await producer.stop()
    env = {**os.environ, "BEND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
           "BEND_KAFKA__DEFAULT_PARTITIONS": str(partitions), "BEND_OPS__PORT": "0",
           "BEND_LOG__FORMAT": "json", **env_extra}
    env.pop("PYTHONPATH", None)
    admin = clients.confluent_admin(settings.kafka)
    group = f"{settings.kafka.topic_prefix}-orchestrator"
    with log_path.open("ab") as log_file:
        launched = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "streams.worker", "orchestrator"],
                                cwd=source, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        assigned = await asyncio.to_thread(_wait_stable, admin, group, launched)
        first: dict[int, float] = {}
        decided: set[tuple[str, int]] = set()
        deadline = time.perf_counter() + 900
        while decided != expected and time.perf_counter() < deadline:
            batch = await watcher.getmany(timeout_ms=200)
            now = time.perf_counter()
            for tp, records in batch.items():
                for r in records:
                    key = (r.key or b"").decode()
                    if (key, tp.partition) in expected:
                        ev = decode(r.value)
                        if isinstance(ev, (RunRequested, StepSucceeded)):
                            decided.add((key, tp.partition))
                            first.setdefault(tp.partition, now)
            if proc.poll() is not None:
                raise RuntimeError(f"the orchestrator exited; see {log_path}")
        if decided != expected:
            raise RuntimeError(f"undecided probes after 900 s; see {log_path}")
        await asyncio.sleep(2.0)
        rss, peak = _rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await watcher.stop()
    return {
        "launch_to_assigned_s": round(assigned - launched, 2),
        "assigned_to_first_decision_s": round(min(first.values()) - assigned, 2),
        "assigned_to_all_partitions_decided_s": round(max(first.values()) - assigned, 2),
        "rss_mib": round(rss / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
    }


def _wait_stable(admin: AdminClient, group: str, since: float) -> float:
    """When the orchestrator group is Stable with one member holding partitions."""
    deadline = since + 120
    while time.perf_counter() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
            if desc.state == ConsumerGroupState.STABLE and len(desc.members) == 1 \
                    and desc.members[0].assignment.topic_partitions:
                return time.perf_counter()
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"group {group} not stable within 120 s")


def _rebuilt(log_path: Path) -> dict[str, Any]:
    """What the orchestrator's rebuilds read, summed over partitions (its last start)."""
    rows = [json.loads(line[line.index("{"):]) for line in log_path.read_text().splitlines()
            if '"partition_rebuilt"' in line]
    return {"snapshot_records_read": sum(r.get("snapshot_records", 0) for r in rows),
            "snapshot_events_folded": sum(r.get("snapshot_events", 0) for r in rows),
            "tail_events_folded": sum(r.get("events", 0) for r in rows),
            "finished_runs_remembered": sum(r.get("finished_runs", 0) for r in rows)}


def _source_at(ref: str, into: Path) -> Path:
    repo = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def case(base: Settings, events: int, cases: list[str], before: Path | None,
               tail: int, log_dir: Path, events_per_round: int = 0) -> dict[str, Any]:
    """One history size: produce it, then measure each case on its own fresh topics copy."""
    prefix = f"rb{uuid.uuid4().hex[:8]}"
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix})
    settings = base.model_copy(update={"kafka": kafka})
    ensure_topics(settings)
    history = await produce_history(settings, events)
    open_runs = history.pop("open")
    out: dict[str, Any] = {"history": history}
    here = Path(__file__).resolve().parents[1]
    for name in cases:
        log_path = log_dir / f"{prefix}-{name}.log"
        if name == "before":
            if before is None:
                continue
            out[name] = await measure(settings, before, {}, open_runs, name, log_path)
        elif name == "full":
            out[name] = await measure(settings, here, {"BEND_WORKERS__SNAPSHOT_INTERVAL_S": "0"},
                                      open_runs, name, log_path)
        elif name == "after":
            snap = await write_snapshot(settings, events_per_round)
            tail_events = await produce_tail(settings, tail)
            got = await measure(settings, here, {}, open_runs, name, log_path)
            out[name] = {**got, "snapshot_written_s": snap["seconds"],
                         "tail_events": tail_events, **_rebuilt(log_path)}
    out["log_dir"] = str(log_dir)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = get_settings()
    log_dir = base.dev.state_dir / "logs" / "bench-recovery"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"partitions": base.kafka.default_partitions}
    with tempfile.TemporaryDirectory(prefix="bend-before-") as tmp:
        before = _source_at(args.before_ref, Path(tmp)) if args.before_ref else None
        for events in args.events:
            results[str(events)] = await case(base, events, args.cases, before, args.tail,
                                              log_dir, args.events_per_round)
            print(json.dumps({str(events): results[str(events)]}), file=sys.stderr)
    return results


def main() -> None:
    """Command line: `python -m bench.recovery [--events N ...] [--before-ref REF]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cases", nargs="+", default=["before", "full", "after"],
                        choices=["before", "full", "after"])
    parser.add_argument("--before-ref", default="",
                        help="git ref of the code to measure as `before` (skipped if empty)")
    parser.add_argument("--tail", type=int, default=3_000,
                        help="run events produced after the snapshot (the log's tail)")
    parser.add_argument("--events-per-round", type=int, default=0,
                        help="write the snapshot a round per this many events of a partition, "
                             "a simulated second apart (0: one round over the whole history)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
