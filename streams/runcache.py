"""Run states of the partitions a worker owns, folded from the run-events log (no Faust table).

The orchestrator is the only writer of a run's events and writes them to the partition
number of the command it decided, so one worker's commands partition P and run-events
partition P hold the same runs. On assignment, P's states are rebuilt: the open runs of its
latest snapshot (streams/snapshots.py) are folded, then the log after the snapshot (the whole
log when there is none). A partition kept across a rebalance is not rebuilt.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import structlog
from aiokafka import TopicPartition

from bend.contracts.codec import decode
from bend.core.apply import apply
from bend.core.kinds import EXECUTOR_NODE_TYPES
from bend.core.errors import BendError
from bend.core.events import (
    Event, StepResumed, StepScheduled, StepSkipped, TimerFired, TimerSet, ToolApprovalRequested,
)
from bend.core.state import RunState
from bend.core.transitions import STEP_ENDINGS
from bend.kafka import clients
from bend.kafka.fromstart import seek_to_start
from bend.settings import KafkaSettings
from streams.snapshots import LoadedSnapshot, PartitionMirror, Snapshotter, load_snapshot

__all__ = ["Decided", "PartitionRuns", "RECENT_DECISIONS", "RunCache", "RunStates"]

log = structlog.get_logger(__name__)

# Decisions a rebuilt partition remembers (see `PartitionRuns.decided`). A crashed worker's
# commands come back from its last committed offset, about a second's worth; this is ample.
RECENT_DECISIONS = 4096
FINISHED_KEPT = 20_000  # finished run ids a partition remembers (settings.workers)


class Decided(NamedTuple):
    """A decision found in the log: the run's state before it and the id of its first event."""

    before: RunState | None
    first_event_id: str


@dataclass(slots=True)
class PartitionRuns:
    """The open runs of one partition, and the ids of its most recently finished ones."""

    partition: int
    open: dict[str, RunState] = field(default_factory=dict)
    # run_id -> final status, the last `finished_kept` only: memory does not grow with history.
    finished: OrderedDict[str, str] = field(default_factory=OrderedDict)
    finished_kept: int = FINISHED_KEPT
    # Work owed to the outside world, so a new owner can hand it out again after a crash:
    tasks: dict[tuple[str, str], StepScheduled] = field(default_factory=dict)
    timers: dict[str, TimerSet] = field(default_factory=dict)
    # The last decisions folded from the log, by the event_id of the command decided: a command
    # redelivered after a crash is recognised here, decided again from the state before it
    # (decide is deterministic), and the commands it owes other runs are sent once more.
    decided: OrderedDict[str, Decided] = field(default_factory=OrderedDict)

    def get(self, run_id: str) -> RunState | None:
        """The open run's state, or None for an unknown or finished run."""
        return self.open.get(run_id)

    def put(self, state: RunState) -> None:
        """Keep the run's new state; a finished run keeps only its final status."""
        if state.is_finished:
            self.open.pop(state.run_id, None)
            self.finish(state.run_id, state.status.value)
            self._forget_run(state.run_id)
        else:
            self.open[state.run_id] = state

    def finish(self, run_id: str, status: str) -> None:
        """Remember that the run finished; the oldest remembered is forgotten past the bound."""
        self.finished[run_id] = status
        self.finished.move_to_end(run_id)
        while len(self.finished) > self.finished_kept:
            self.finished.popitem(last=False)

    def _forget_run(self, run_id: str) -> None:
        for key in [k for k in self.tasks if k[0] == run_id]:
            del self.tasks[key]
        for timer_id in [t for t, ev in self.timers.items() if ev.run_id == run_id]:
            del self.timers[timer_id]

    def _track(self, event: Event) -> None:
        """Keep the open executor tasks and pending timers that `event` creates or ends."""
        match event:
            case StepScheduled(node_type=node_type) if node_type in EXECUTOR_NODE_TYPES:
                self.tasks[(event.run_id or "", event.step_id)] = event
            case StepResumed(node_type=node_type) if node_type in EXECUTOR_NODE_TYPES:
                self.tasks[(event.run_id or "", event.step_id)] = event.task()
            case ToolApprovalRequested():  # paused: no executor holds it until it is decided
                self.tasks.pop((event.run_id or "", event.step_id), None)
            case StepSkipped():
                self.tasks.pop((event.run_id or "", event.step_id), None)
            case Event(event_type=ending) if ending in STEP_ENDINGS:
                self.tasks.pop((event.run_id or "", getattr(event, "step_id", "")), None)
            case TimerSet():
                self.timers[event.timer_id] = event
            case TimerFired():
                self.timers.pop(event.timer_id, None)

    def accept(self, state: RunState, events: tuple[Event, ...]) -> None:
        """Keep the state a decision left the run in, and the work its events owe."""
        for event in events:
            self._track(event)
        self.put(state)

    def fold(self, event: Event) -> RunState | None:
        """Fold one logged event; duplicates a zombie writer left behind are passed over."""
        run_id = event.run_id or ""
        if run_id in self.finished:
            return None
        state = self.open.get(run_id)
        if state is not None and event.seq <= state.seq:
            log.warning("duplicate_event_skipped", run_id=run_id, seq=event.seq,
                        event_type=event.event_type)
            return state
        before = state
        try:
            state = apply(state, event)
        except BendError as exc:  # an illegal event in the log: keep going, report it
            log.error("illegal_event_in_log", run_id=run_id, seq=event.seq,
                      event_type=event.event_type, error=str(exc))
            return state
        self._remember(event, before)
        self._track(event)
        self.put(state)
        return state

    def _remember(self, event: Event, before: RunState | None) -> None:
        """Keep the state before the first event of each decision (events share its cause)."""
        cause = event.causation_id
        if cause and cause not in self.decided:
            self.decided[cause] = Decided(before, event.event_id)
            if len(self.decided) > RECENT_DECISIONS:
                self.decided.popitem(last=False)


class RunStates(Protocol):
    """The runs of the partitions an orchestrator owns (RunCache; a fake in unit tests)."""

    def owned(self) -> dict[int, PartitionRuns]:
        """The partitions ready to decide on."""
        ...

    async def partition(self, partition: int) -> PartitionRuns:
        """The partition's runs, rebuilt first if need be."""
        ...

    def drop(self, partitions: set[int]) -> None:
        """Forget revoked partitions."""
        ...

    def known(self, partition: int) -> bool:
        """Whether the partition is rebuilt or being rebuilt."""
        ...

    async def hold(self, partitions: set[int]) -> None:
        """Revoked: keep the partitions' runs until the new assignment says whose they are."""
        ...

    async def resume(self, assigned: set[int]) -> tuple[set[int], set[int]]:
        """The new assignment: (kept, dropped) of the held partitions."""
        ...


class RunCache:
    """Per-partition run states, each rebuilt once (snapshot, then log tail) before it is used.

    A partition revoked while its rebuild is under way is not kept when the rebuild ends, unless
    the same assignment gives it back and nobody wrote to its run log meanwhile (`hold`,
    `resume`): otherwise its runs may have been changed by another owner, so a later assignment
    rebuilds it again (kept, the stale states would decide commands and no recovery would hand
    out its open tasks).
    """

    def __init__(self, kafka: KafkaSettings, run_events_topic: str,
                 snapshots: Snapshotter | None = None,
                 finished_kept: int = FINISHED_KEPT) -> None:
        self._kafka = kafka
        self._topic = run_events_topic
        self._snapshots = snapshots
        self._finished_kept = finished_kept
        self._partitions: dict[int, PartitionRuns] = {}
        self._loading: dict[int, asyncio.Task[tuple[PartitionRuns, PartitionMirror | None]]] = {}
        self._held: dict[int, int] = {}  # revoked, maybe given back: partition -> log end then
        # Clear from a revocation to the assignment's verdict: Faust may resume the partitions
        # before its assigned signal reaches `resume`, and no held state may decide meanwhile.
        self._settled = asyncio.Event()
        self._settled.set()

    def owned(self) -> dict[int, PartitionRuns]:
        """The partitions already rebuilt."""
        return self._partitions

    def known(self, partition: int) -> bool:
        """Whether the partition is rebuilt or being rebuilt."""
        return partition in self._partitions or partition in self._loading

    async def partition(self, partition: int) -> PartitionRuns:
        """The partition's runs, rebuilding them on first use (after a rebalance's verdict)."""
        if not self._settled.is_set():
            await self._settled.wait()
        runs = self._partitions.get(partition)
        if runs is not None:
            return runs
        task = self._loading.get(partition)
        if task is None:
            task = asyncio.ensure_future(self._rebuild(partition))
            self._loading[partition] = task
        try:
            runs, mirror = await task
        finally:
            # `drop` forgets the loading task of a revoked partition: not current any more.
            current = self._loading.get(partition) is task
            if current:
                del self._loading[partition]
        if current:
            self._partitions[partition] = runs
            if mirror is not None and self._snapshots is not None:
                self._snapshots.follow(mirror)
        elif self._partitions.get(partition) is not runs:
            log.info("partition_revoked_while_rebuilt", partition=partition)
        return runs

    def drop(self, partitions: set[int]) -> None:
        """Forget revoked partitions: another worker owns their runs now."""
        for p in partitions:
            self._partitions.pop(p, None)
            self._loading.pop(p, None)  # a rebuild under way is not kept, nor reused
            self._held.pop(p, None)
        if self._snapshots is not None:
            self._snapshots.unfollow(partitions)

    async def hold(self, partitions: set[int]) -> None:
        """Revoked: keep the partitions' runs until the new assignment says whose they are.

        Their run log's end is noted (our own writes are flushed by now): if it has not moved
        when the partition comes back, nobody else decided its commands meanwhile.
        """
        mine = {p for p in partitions if self.known(p) and p not in self._held}
        if not mine:
            return
        self._settled.clear()
        for p in mine:
            self._held[p] = -1  # not known yet: not kept
        try:
            ends = await self._ends(mine)
        except Exception as exc:
            log.warning("run_log_end_unknown", partitions=sorted(mine), error=repr(exc))
            return
        for p in mine:
            self._held[p] = ends[p]

    async def resume(self, assigned: set[int]) -> tuple[set[int], set[int]]:
        """The new assignment: (kept, dropped) of the held partitions; dropped ones are
        forgotten."""
        try:
            held, self._held = self._held, {}
            back = {p for p in held if p in assigned and self.known(p) and held[p] >= 0}
            try:
                ends = await self._ends(back) if back else {}
            except Exception as exc:
                log.warning("run_log_end_unknown", partitions=sorted(back), error=repr(exc))
                ends = {p: -1 for p in back}
            kept = {p for p in back if ends[p] == held[p]}
            dropped = set(held) - kept
            for p in back - kept:
                log.info("partition_changed_while_revoked", partition=p, end_then=held[p],
                         end_now=ends[p])
            self.drop(dropped)
            if kept:
                log.info("partitions_kept_across_rebalance", partitions=sorted(kept))
        finally:
            self._settled.set()
        return kept, dropped

    async def _ends(self, partitions: set[int]) -> dict[int, int]:
        consumer = clients.consumer(self._kafka, enable_auto_commit=False,
                                    group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(self._topic, p)
                                               for p in partitions])
        finally:
            await consumer.stop()
        return {tp.partition: end for tp, end in ends.items()}

    async def _rebuild(self, partition: int) -> tuple[PartitionRuns, PartitionMirror | None]:
        started = time.perf_counter()
        runs = PartitionRuns(partition, finished_kept=self._finished_kept)
        snapshots = self._snapshots if self._snapshots is not None \
            and self._snapshots.enabled else None
        loaded = LoadedSnapshot(partition)
        if snapshots is not None:
            await snapshots.claim(partition)  # fences the previous writer before we read
            loaded = await load_snapshot(self._kafka, snapshots.topic, partition)
            if loaded.round is None:  # none yet (or its first round never finished)
                loaded = LoadedSnapshot(partition, records=loaded.records)
        from_snapshot = self._fold_snapshot(runs, loaded)
        loaded_s = time.perf_counter() - started
        mirror = snapshots.mirror(loaded) if snapshots is not None else None
        tp = TopicPartition(self._topic, partition)
        consumer = clients.consumer(
            self._kafka, enable_auto_commit=False, group_id=None,
            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        count = 0
        try:
            begins, ends = await seek_to_start(consumer, [tp])
            end = ends[tp]
            if loaded.covers_offset > begins[tp]:
                consumer.seek(tp, loaded.covers_offset)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    if mirror is not None:
                        mirror.feed(record.offset, record.timestamp, record.key, record.value)
                    if self._fold_raw(runs, record.value, record.offset):
                        count += 1
        finally:
            await consumer.stop()
        log.info("partition_rebuilt", partition=partition, events=count,
                 snapshot_records=loaded.records, snapshot_events=from_snapshot,
                 snapshot_seconds=round(loaded_s, 3), from_offset=loaded.covers_offset,
                 open_runs=len(runs.open), finished_runs=len(runs.finished),
                 seconds=round(time.perf_counter() - started, 3))
        return runs, mirror

    def _fold_snapshot(self, runs: PartitionRuns, loaded: LoadedSnapshot) -> int:
        """Fold the snapshot's open runs and remember its finished ones; events folded."""
        for run_id in loaded.finished[-self._finished_kept:]:
            runs.finish(run_id, "finished")
        count = 0
        for snap in loaded.runs.values():
            for raw in snap.events:
                count += self._fold_raw(runs, raw, -1)
        return count

    @staticmethod
    def _fold_raw(runs: PartitionRuns, raw: bytes | None, offset: int) -> bool:
        if not raw:
            return False
        try:
            event = decode(raw)
        except BendError as exc:
            log.error("undecodable_event_in_log", partition=runs.partition, offset=offset,
                      error=str(exc))
            return False
        if isinstance(event, Event) and event.run_id:
            runs.fold(event)
            return True
        return False
