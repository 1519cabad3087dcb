"""Snapshots of a partition's open runs: the snapshot folded, then the log's tail, is the whole log
folded; finished runs are listed once per round, kept for a window, and forgotten past a bound."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bend.contracts.codec import encode
from bend.contracts.snapshots import (
    FinishedRuns, RunSnapshot, SnapshotRound, decode_snapshot, encode_snapshot, ends_run,
    round_key,
)
from bend.core.commands import CancelRun, CompleteStep, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import Event
from bend.core.state import RunState
from bend.settings import KafkaSettings
from streams.runcache import PartitionRuns, RunCache
from streams.snapshots import LoadedSnapshot, PartitionMirror

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
CHAIN = {"name": "chain3", "steps": [
    {"id": "s0", "type": "tool", "component": "noop@1"},
    {"id": "s1", "type": "tool", "component": "noop@1", "after": ["s0"]},
    {"id": "s2", "type": "tool", "component": "noop@1", "after": ["s1"]},
]}
DEFINITION = definition_json(parse_definition(CHAIN))


def _command(kind: str, state: RunState | None, run_id: str, now: datetime):
    common = dict(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf-chain3",
                  workflow_version=1, occurred_at=now)
    if kind == "start":
        return StartRun(**common, correlation_id=run_id, definition=DEFINITION, input={})
    if kind == "cancel":
        return CancelRun(**common, reason="test")
    assert state is not None
    step = next(s for s in state.open_steps())
    return CompleteStep(**common, step_id=step.step_id, attempt=step.attempt, output={"ok": 1})


def _log(actions: list[tuple[int, str]]) -> list[Event]:
    """The run log a sequence of (run index, start|advance|cancel) decides; rejected ones drop."""
    states: dict[int, RunState | None] = {}
    ids: dict[int, str] = {}
    log: list[Event] = []
    now = NOW
    for index, kind in actions:
        now += timedelta(milliseconds=7)
        state = states.get(index)
        if kind == "start" and index in states:
            continue
        if kind != "start" and (state is None or state.is_finished or not state.open_steps()):
            continue
        run_id = ids.setdefault(index, str(uuid.UUID(int=index + 1)))
        decision = decide(state, _command(kind, state, run_id, now), now)
        if isinstance(decision, Accepted):
            states[index] = decision.state
            log += decision.events
    return log


def _view(runs: PartitionRuns) -> tuple:
    return ({r: s for r, s in runs.open.items()}, set(runs.finished), dict(runs.tasks),
            dict(runs.timers))


ACTIONS = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(
    ["start", "advance", "advance", "advance", "cancel"])), max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, cuts=st.lists(st.integers(0, 200), max_size=4), lag=st.integers(0, 3))
def test_the_snapshot_folded_then_the_tail_is_the_whole_log_folded(
        actions: list[tuple[int, str]], cuts: list[int], lag: int) -> None:
    events = _log(actions)
    payloads = [encode(e) for e in events]
    full = PartitionRuns(0)
    for event in events:
        full.fold(event)
    # Rounds taken after feeding `cut` records; record i's time is i ms, the lag `lag` ms.
    mirror = PartitionMirror(0, lag_ms=lag)
    written: list[tuple[bytes, bytes | None]] = []
    fed = 0
    for cut in sorted(min(c, len(payloads)) for c in cuts):
        for i in range(fed, cut):
            mirror.feed(i, i, events[i].run_id.encode(), payloads[i])
        fed = max(fed, cut)
        mirror.settle(now_ms=fed)
        done = mirror.take_round(now_ms=fed)
        if done is not None:
            mirror.written(done)
            written += done.records
    loaded = LoadedSnapshot.of_records(0, written)
    rebuilt = PartitionRuns(0)
    cache = RunCache(KafkaSettings(bootstrap="unused:9092"), "unused")
    cache._fold_snapshot(rebuilt, loaded)  # noqa: SLF001 - the fold the rebuild does
    for i in range(loaded.covers_offset, len(payloads)):
        cache._fold_raw(rebuilt, payloads[i], i)  # noqa: SLF001
    assert _view(rebuilt) == _view(full)
    if loaded.round is not None:  # what a snapshot holds is whole up to its offset
        assert loaded.covers_offset <= fed
        for snap in loaded.runs.values():
            mine = [p for i, p in enumerate(payloads[:loaded.covers_offset])
                    if events[i].run_id == snap.run_id]
            assert list(snap.events)[:len(mine)] == mine


def _fed(events: list[Event], partition: int = 0, lag_ms: int = 0,
         keep_ms: int = 3_600_000) -> PartitionMirror:
    mirror = PartitionMirror(partition, lag_ms=lag_ms, keep_finished_ms=keep_ms)
    for i, event in enumerate(events):
        mirror.feed(i, 0, event.run_id.encode(), encode(event))
    return mirror


def test_a_run_finished_before_its_first_snapshot_is_listed_once_and_has_no_snapshot() -> None:
    events = _log([(0, "start"), (1, "start"), (0, "cancel")])
    mirror = _fed(events, partition=3)
    mirror.settle(now_ms=10)
    done = mirror.take_round(now_ms=10)
    assert done is not None
    mirror.written(done)
    ended, running = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    decoded = [(k, decode_snapshot(v) if v else None) for k, v in done.records]
    assert [type(v).__name__ for _, v in decoded] == ["RunSnapshot", "FinishedRuns",
                                                     "SnapshotRound"]
    assert decoded[0][0] == running.encode() and decoded[0][1].partition == 3
    assert decoded[1][1] == FinishedRuns(3, (ended,), 10)
    assert decoded[-1] == (round_key(3), SnapshotRound(3, len(events), 1, 10, ""))
    assert mirror.take_round(now_ms=20) is None  # nothing new: no round
    assert sum(ends_run(encode(e)) for e in events) == 1


def test_a_snapshotted_run_that_finishes_is_deleted_and_listed() -> None:
    events = _log([(0, "start"), (0, "cancel")])
    first = [i for i, e in enumerate(events) if type(e).__name__ != "RunCancelled"
             and type(e).__name__ != "StepCancelled"]
    mirror = PartitionMirror(0, lag_ms=0)
    for i in first:
        mirror.feed(i, 0, events[i].run_id.encode(), encode(events[i]))
    mirror.settle(now_ms=1)
    mirror.written(mirror.take_round(now_ms=1))
    for i in range(len(first), len(events)):
        mirror.feed(i, 0, events[i].run_id.encode(), encode(events[i]))
    mirror.settle(now_ms=2)
    done = mirror.take_round(now_ms=2)
    run_id = str(uuid.UUID(int=1)).encode()
    assert (run_id, None) in done.records
    loaded = LoadedSnapshot.of_records(0, [*mirror_records(first, events), *done.records])
    assert loaded.runs == {} and loaded.finished == [run_id.decode()]


def mirror_records(indices: list[int], events: list[Event]) -> list[tuple[bytes, bytes]]:
    """A round's records for the events at `indices` (one run's snapshot and the marker)."""
    mirror = PartitionMirror(0, lag_ms=0)
    for i in indices:
        mirror.feed(i, 0, events[i].run_id.encode(), encode(events[i]))
    mirror.settle(now_ms=1)
    return mirror.take_round(now_ms=1).records


def test_finished_runs_lists_are_deleted_after_the_window() -> None:
    events = _log([(0, "start"), (0, "cancel")])
    mirror = _fed(events, keep_ms=1000)
    mirror.settle(now_ms=10)
    first = mirror.take_round(now_ms=10)
    mirror.written(first)
    assert mirror.take_round(now_ms=900) is None  # still within the window
    late = mirror.take_round(now_ms=1011)
    batch_key = first.records[-2][0]
    assert late is not None and (batch_key, None) in late.records
    mirror.written(late)
    loaded = LoadedSnapshot.of_records(0, [*first.records, *late.records])
    assert loaded.finished == [] and loaded.round is not None


def test_records_younger_than_the_lag_stay_in_the_tail() -> None:
    events = _log([(0, "start"), (0, "advance")])
    mirror = PartitionMirror(0, lag_ms=100)
    for i, event in enumerate(events):
        mirror.feed(i, 1000 if i < 3 else 1080, event.run_id.encode(), encode(event))
    mirror.settle(now_ms=1150)  # records at 1000 are old enough, those at 1080 not yet
    records = mirror.take_round(now_ms=1150).records
    marker = decode_snapshot(records[-1][1] or b"")
    assert isinstance(marker, SnapshotRound) and marker.covers_offset == 3
    snap = decode_snapshot(records[0][1] or b"")
    assert isinstance(snap, RunSnapshot) and len(snap.events) == 3


def test_a_run_too_big_to_snapshot_holds_the_round_back_to_its_first_unsaved_event() -> None:
    events = _log([(0, "start"), (1, "start"), (1, "advance")])
    small, big = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    sizes = {r: sum(len(encode(e)) for e in events if e.run_id == r) for r in (small, big)}
    mirror = PartitionMirror(0, lag_ms=0, max_bytes=(sizes[small] + sizes[big]) // 2 + 256)
    for i, event in enumerate(events):
        mirror.feed(i, 0, event.run_id.encode(), encode(event))
    mirror.settle(now_ms=1)
    records = mirror.take_round(now_ms=1).records
    marker = decode_snapshot(records[-1][1] or b"")
    first_of_big = next(i for i, e in enumerate(events) if e.run_id == big)
    assert isinstance(marker, SnapshotRound) and marker.covers_offset == first_of_big
    assert [k for k, _ in records[:-1]] == [small.encode()]  # the big run stays in the tail


def test_finished_runs_are_remembered_up_to_a_bound() -> None:
    runs = PartitionRuns(0, finished_kept=3)
    for i in range(5):
        runs.finish(f"r{i}", "completed")
    assert list(runs.finished) == ["r2", "r3", "r4"]


def test_snapshot_records_round_trip() -> None:
    snap = RunSnapshot("r1", 2, 40, (b"\xc3\x01abc", b"\xc3\x01de"), 123)
    finished = FinishedRuns(2, ("r0", "r9"), 124)
    marker = SnapshotRound(2, 40, 7, 124, "w1")
    for record in (snap, finished, marker):
        assert decode_snapshot(encode_snapshot(record)) == record
