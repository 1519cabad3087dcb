"""Snapshots of a partition's open runs: the snapshot folded, then the log's tail, is the whole log
folded; finished runs leave tombstones and are forgotten past a bound."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bend.contracts.codec import encode
from bend.contracts.snapshots import (
    RunSnapshot, SnapshotRound, decode_snapshot, encode_snapshot, ends_run, round_key,
)
from bend.core.commands import CancelRun, CompleteStep, StartRun
from bend.core.decide import Accepted, decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.events import Event, StepScheduled
from bend.core.state import RunState
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
        records = mirror.take_round(now_ms=fed)
        if records:
            mirror.written(records)
            written += records
    loaded = LoadedSnapshot.of_records(0, written)
    rebuilt = PartitionRuns(0)
    cache = RunCache("unused:9092", "unused")
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


def test_a_finished_run_leaves_a_tombstone_and_no_snapshot() -> None:
    events = _log([(0, "start"), (1, "start"), (0, "cancel")])
    mirror = PartitionMirror(3, lag_ms=0)
    for i, event in enumerate(events):
        mirror.feed(i, 0, event.run_id.encode(), encode(event))
    mirror.settle(now_ms=10)
    records = mirror.take_round(now_ms=10)
    mirror.written(records)
    by_key = dict(records)
    ended, running = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    assert by_key[ended.encode()] is None
    snap = decode_snapshot(by_key[running.encode()] or b"")
    assert isinstance(snap, RunSnapshot) and snap.partition == 3
    marker = decode_snapshot(records[-1][1] or b"")
    assert records[-1][0] == round_key(3)
    assert marker == SnapshotRound(3, len(events), 1, 10, "")
    assert mirror.take_round(now_ms=20) == []  # nothing new: no round
    assert sum(ends_run(encode(e)) for e in events) == 1


def test_records_younger_than_the_lag_stay_in_the_tail() -> None:
    events = _log([(0, "start"), (0, "advance")])
    mirror = PartitionMirror(0, lag_ms=100)
    for i, event in enumerate(events):
        mirror.feed(i, 1000 if i < 3 else 1080, event.run_id.encode(), encode(event))
    mirror.settle(now_ms=1150)  # records at 1000 are old enough, those at 1080 not yet
    records = mirror.take_round(now_ms=1150)
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
    records = mirror.take_round(now_ms=1)
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
    marker = SnapshotRound(2, 40, 7, 124, "w1")
    assert decode_snapshot(encode_snapshot(snap)) == snap
    assert decode_snapshot(encode_snapshot(marker)) == marker
