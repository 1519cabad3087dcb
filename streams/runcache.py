"""Run states of the partitions a worker owns, folded from the run-events log (no Faust table).

The orchestrator is the only writer of a run's events and writes them to the partition
number of the command it decided, so one worker's commands partition P and run-events
partition P hold the same runs. On assignment, P's states are rebuilt by folding its log.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from bend.contracts.codec import decode
from bend.core.apply import apply
from bend.core.definitions import EXECUTOR_NODE_TYPES
from bend.core.errors import BendError
from bend.core.events import (
    Event, StepCancelled, StepFailed, StepScheduled, StepSkipped, StepSucceeded, StepTimedOut,
    TimerFired, TimerSet,
)
from bend.core.state import RunState
from bend.kafka.fromstart import seek_to_start

__all__ = ["Decided", "PartitionRuns", "RECENT_DECISIONS", "RunCache", "RunStates"]

log = structlog.get_logger(__name__)

# Decisions a rebuilt partition remembers (see `PartitionRuns.decided`). A crashed worker's
# commands come back from its last committed offset, about a second's worth; this is ample.
RECENT_DECISIONS = 4096


class Decided(NamedTuple):
    """A decision found in the log: the run's state before it and the id of its first event."""

    before: RunState | None
    first_event_id: str


@dataclass(slots=True)
class PartitionRuns:
    """The open runs of one partition, and the ids of its finished ones."""

    partition: int
    open: dict[str, RunState] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)  # run_id -> final status
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
            self.finished[state.run_id] = state.status.value
            self._forget_run(state.run_id)
        else:
            self.open[state.run_id] = state

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
            case StepSucceeded() | StepFailed() | StepTimedOut() | StepCancelled() | StepSkipped():
                self.tasks.pop((event.run_id or "", event.step_id), None)
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


class RunCache:
    """Per-partition run states, each rebuilt once from the log before it is used.

    A partition revoked while its rebuild is under way is not kept when the rebuild ends: its
    runs may be changed by the new owner from then on, so a later assignment rebuilds it again
    from the log (kept, the stale states would decide commands and no recovery would hand out
    its open tasks).
    """

    def __init__(self, bootstrap: str, run_events_topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = run_events_topic
        self._partitions: dict[int, PartitionRuns] = {}
        self._loading: dict[int, asyncio.Task[PartitionRuns]] = {}

    def owned(self) -> dict[int, PartitionRuns]:
        """The partitions already rebuilt."""
        return self._partitions

    async def partition(self, partition: int) -> PartitionRuns:
        """The partition's runs, rebuilding them from the log on first use."""
        runs = self._partitions.get(partition)
        if runs is not None:
            return runs
        task = self._loading.get(partition)
        if task is None:
            task = asyncio.ensure_future(self._rebuild(partition))
            self._loading[partition] = task
        try:
            runs = await task
        finally:
            # `drop` forgets the loading task of a revoked partition: not current any more.
            current = self._loading.get(partition) is task
            if current:
                del self._loading[partition]
        if current:
            self._partitions[partition] = runs
        elif self._partitions.get(partition) is not runs:
            log.info("partition_revoked_while_rebuilt", partition=partition)
        return runs

    def drop(self, partitions: set[int]) -> None:
        """Forget revoked partitions: another worker owns their runs now."""
        for p in partitions:
            self._partitions.pop(p, None)
            self._loading.pop(p, None)  # a rebuild under way is not kept, nor reused

    async def _rebuild(self, partition: int) -> PartitionRuns:
        started = time.perf_counter()
        runs = PartitionRuns(partition)
        tp = TopicPartition(self._topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None,
            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        count = 0
        try:
            _, ends = await seek_to_start(consumer, [tp])
            end = ends[tp]
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    try:
                        event = decode(record.value)
                    except BendError as exc:
                        log.error("undecodable_event_in_log", partition=partition,
                                  offset=record.offset, error=str(exc))
                        continue
                    if isinstance(event, Event) and event.run_id:
                        runs.fold(event)
                        count += 1
        finally:
            await consumer.stop()
        log.info("partition_rebuilt", partition=partition, events=count,
                 open_runs=len(runs.open), finished_runs=len(runs.finished),
                 seconds=round(time.perf_counter() - started, 3))
        return runs
