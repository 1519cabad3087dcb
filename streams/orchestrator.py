"""The orchestrator: per run (keyed by run_id), commands in, decided events out.

One hop per decision: a command is decided against the run's folded state with the pure
`decide`, its events are folded with `apply`, appended to the run log (same partition
number as the command), executor steps are handed to the tasks topic, timers are armed,
and commands for other runs (child runs, parents) go to the commands topic.

Decisions are written by group commit (streams/groupcommit.py): the agent keeps deciding
while a partition's previous write is in flight, and a command's offset is released only
once the batch holding its events (and what it sends with them) is delivered.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import partial
from collections.abc import Sequence
from typing import Any, cast

import faust
import structlog
from structlog.contextvars import bound_contextvars

from bend.contracts.codec import decode, encode
from bend.core.commands import Command, SignalRun, StartRun
from bend.core.decide import Accepted, Rejected, decide
from bend.core.errors import BendError
from bend.core.events import (
    Event, StepCancelled, StepEnding, StepScheduled, TimerSet,
)
from bend.core.ids import timer_id
from bend.core.transitions import RUN_ENDINGS, STEP_ENDINGS
from bend.ops.interceptors import Interceptor, default_interceptors, handled_by, wrap
from bend.settings import Settings
from bend.tracing import command_span, kafka_headers, task_headers
from streams.app import topic_names
from streams.catalog import Catalog, WorkflowCatalog
from streams.dlq import DeadLetters
from streams.acks import Ack, once
from streams.groupcommit import GroupCommit
from streams.hops import PROFILE
from streams.produce import Delivery, Producer, RecordSender
from streams.routing import misrouted
from streams.runcache import Decided, PartitionRuns, RunCache, RunStates
from streams.scheduler import TimerQueue
from streams.reported import reported_attempts
from streams.snapshots import Snapshotter
from streams.background import spawn

__all__ = ["Orchestrator", "SignalRefused", "UnknownWorkflowId"]

log = structlog.get_logger(__name__)



class SignalRefused(BendError):
    """A run refused a signal (finished or unknown run, no step for it, a failing payload)."""

    def __init__(self, cmd: SignalRun, reason: str) -> None:
        super().__init__(f"run {cmd.run_id} refused signal {cmd.name!r}: {reason}; fix it and "
                         "re-drive the dead letter, or send the signal again")
        self.run_id = cmd.run_id
        self.name = cmd.name


class UnknownWorkflowId(BendError):
    """A StartRun without a definition names a workflow the catalog does not hold."""

    code = "unknown_workflow"

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"StartRun names workflow {workflow_id!r}, which is not registered, "
                         "and carries no definition; register the workflow, then re-drive "
                         "this dead letter (`bend dead-letters redrive`)")
        self.workflow_id = workflow_id


class Orchestrator:
    """Decides each run's commands into events; owns the runs of its assigned partitions."""

    def __init__(self, app: faust.App, settings: Settings, *,
                 producer: RecordSender | None = None, cache: RunStates | None = None,
                 catalog: Catalog | None = None,
                 interceptors: Sequence[Interceptor] | None = None) -> None:
        names = topic_names(settings)
        self.app = app
        self.settings = settings
        self.commands = app.topic(names.commands)  # the agent's source
        self.names = names
        self.producer: RecordSender = producer or Producer(app)
        self.dead_letters = DeadLetters(self.producer, names.dead_letters)
        w = settings.workers
        self.snapshots = Snapshotter(settings.kafka, names.run_events,
                                     names.run_states, interval_s=w.snapshot_interval_s,
                                     lag_s=w.snapshot_lag_s, max_bytes=w.snapshot_max_bytes,
                                     writer=w.worker_id or "")
        self.cache: RunStates = cache or RunCache(
            settings.kafka, names.run_events, self.snapshots,
            finished_kept=w.finished_runs_kept)
        self.catalog: Catalog = catalog or WorkflowCatalog(settings.kafka,
                                                           names.workflows)
        self.writer = GroupCommit(self.producer, names.run_events, app.crash)
        self.timers = TimerQueue(self._fire)
        self.partitions = settings.kafka.default_partitions  # every topic has as many (admin)
        self.decided = 0
        self.rejected = 0
        self.in_flight = 0  # commands received and not yet acked (an idle orchestrator has none)
        # Metrics and tracing wrap `decide` (bend.ops.interceptors); `_handled` tells them of
        # the commands settled without a decision.
        chain = default_interceptors() if interceptors is None else tuple(interceptors)
        self._decide = wrap(decide, chain)
        self._handled = handled_by(chain)

    def register(self) -> None:
        """Attach the agent, the timer task and the rebalance hooks to the app."""
        self.app.agent(self.commands, name="orchestrator")(self._agent)
        self.app.task(self._timer_task)
        self.app.task(self._catalog_task)
        self.app.task(self.snapshots.run)
        # mode types a handler as taking any positional arguments; this signal sends one.
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        # A coroutine, not an async generator: Faust then runs no per-event `_slurp` step
        # (which formats a debug line for every record whatever the log level).
        # Acks are manual: a command's offset may be committed only once its events are in
        # the log, which group commit reports after the agent has moved on to later commands.
        # Agents are given a faust Stream, which has noack; faust's StreamT does not say so.
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            message = event.message
            self.in_flight += 1
            PROFILE.received(message)
            started = time.perf_counter()
            ack = once(partial(self._ack, event))
            try:
                await self.handle(message.partition, message.offset, message.timestamp,
                                  message.value, message.key, message.headers, ack=ack)
            except BaseException:
                ack()  # as Faust does when an agent raises: the record is not read again
                raise
            PROFILE.since("handled", started)

    def _ack(self, event: faust.EventT[Any]) -> None:
        """Release a command's offset (called once, when what it owes is delivered)."""
        self.in_flight -= 1
        event.ack()

    async def handle(self, partition: int, offset: int, timestamp: float, raw: bytes,
                     key: bytes | None = None, headers: Any = None, *,
                     ack: Ack | None = None) -> None:
        """Decide one command record; bad records go to the dead-letter topic.

        Returns once the decision is made and queued for its partition's next write; `ack`
        is called once that write (or the dead letter) is delivered, in offset order.
        """
        topic = self.commands.get_topic_name()
        started = time.perf_counter()
        try:
            cmd = decode(raw)
        except BendError as exc:  # dead-lettered where it was produced, never forwarded
            await self._dead_letter(partition, offset, key, raw, exc, headers, ack)
            return
        home = misrouted(key, partition, self.partitions)
        if home is not None:  # hashed otherwise than murmur2 (an outside producer's CRC32)
            await self._forward(topic, partition, offset, home, key, raw, headers, ack)
            return
        started = PROFILE.since("decode", started)
        if not isinstance(cmd, Command) or not cmd.run_id:
            self._handled(type(cmd).__name__, "dead_lettered")
            await self._dead_letter(partition, offset, key, raw,
                                    TypeError(f"{type(cmd).__name__} is no command"),
                                    headers, ack)
            return
        if isinstance(cmd, StartRun) and cmd.definition is None and cmd.parent_run_id is None:
            # A StartRun naming its workflow only (an outside producer): pin the definition,
            # or keep the record until the workflow exists and it is re-driven.
            cmd = await self.catalog.complete(cmd)
            if cmd.definition is None:
                await self._dead_letter(partition, offset, key, raw,
                                        UnknownWorkflowId(cmd.workflow_id), headers, ack)
                return
        assert cmd.run_id  # checked above (complete() keeps it)
        runs = await self.cache.partition(partition)
        with bound_contextvars(run_id=cmd.run_id, event_id=cmd.event_id), \
                command_span(cmd, headers):
            now = datetime.fromtimestamp(timestamp, tz=timezone.utc)
            decided = runs.decided.get(cmd.event_id)
            if decided is not None:  # decided before a crash: its outbox may never have left
                self._resend_outbox(decided, cmd, now, partition, ack)
                return
            if cmd.run_id in runs.finished:
                self.rejected += 1
                self._handled(cmd.event_type, "rejected")
                reason = f"run is {runs.finished[cmd.run_id]}"
                log.info("command_rejected", command=cmd.event_type, reason=reason)
                if isinstance(cmd, SignalRun):  # outside producers learn why from the DLQ
                    await self._dead_letter(partition, offset, key, raw,
                                            SignalRefused(cmd, reason), headers, ack)
                    return
                self.writer.add(partition, ack=ack)
                return
            before = runs.get(cmd.run_id)
            try:
                decision = self._decide(before, cmd, now)
            except Exception as exc:  # a bug must not stop every other run
                log.exception("decide_crashed", command=cmd.event_type)
                await self._dead_letter(partition, offset, key, raw, exc, headers, ack)
                return
            if isinstance(decision, Rejected):
                self.rejected += 1
                log.info("command_rejected", command=cmd.event_type, reason=decision.reason)
                if isinstance(cmd, SignalRun) and decision.code != "duplicate":
                    await self._dead_letter(partition, offset, key, raw,
                                            SignalRefused(cmd, decision.reason), headers, ack)
                    return
                self.writer.add(partition, ack=ack)
                return
            self.decided += 1
            PROFILE.since("decide", started)
            self._emit(runs, decision, partition, ack)

    async def _forward(self, topic: str, partition: int, offset: int, home: int,
                       key: bytes | None, raw: bytes, headers: Any, ack: Ack | None) -> None:
        """Send a command that arrived off its run's partition to that partition, unchanged,
        and release it once delivered: every record of a run is decided in one place."""
        delivery = await self.producer.send(topic, key, raw, home,
                                            headers=list(headers) if headers else None)

        async def delivered() -> list[Delivery[Any]]:
            return [delivery]

        self.writer.add(partition, follow_up=delivered, ack=ack)
        self._handled("record", "forwarded")
        log.info("command_forwarded", partition=partition, offset=offset, to_partition=home)

    async def _dead_letter(self, partition: int, offset: int, key: bytes | None, raw: bytes,
                           error: BaseException, headers: Any, ack: Ack | None) -> None:
        topic = self.commands.get_topic_name()
        delivery = await self.dead_letters.send(topic, partition, offset, key, raw, error,
                                                headers)

        async def delivered() -> list[Delivery[Any]]:
            return [delivery]

        self.writer.add(partition, follow_up=delivered, ack=ack)

    def _emit(self, runs: PartitionRuns, decision: Accepted, partition: int,
              ack: Ack | None) -> None:
        """Fold the decision in now (the next command sees it); queue its events' write."""
        assert decision.state is not None
        runs.accept(decision.state, decision.events)
        self._disarm_ended(decision)
        key = decision.state.run_id.encode()
        started = time.perf_counter()
        encoded = [(ev, encode(ev)) for ev in decision.events]
        PROFILE.since("encode", started)
        # Executor steps go to the tasks topic, and so do their withdrawals: the executor
        # holding the partition stops an attempt cancelled while it is out.
        open_tasks: dict[str, Event] = {ev.event_id: ev for ev in decision.tasks()}
        open_tasks.update((ev.event_id, ev) for ev in decision.withdrawn())
        timers = decision.timers()
        outbox = decision.outbox
        trace = kafka_headers()  # this command's trace context, taken while its span is current

        async def follow_up() -> list[Delivery[Any]]:
            # The tasks topic has as many partitions as the commands topic: naming the
            # command's partition spares the producer hashing the key (pure-Python murmur2).
            # A resumed attempt (StepResumed) goes out as its task, a StepScheduled.
            sent = [await self.producer.send(self.names.tasks, key,
                                             payload if task is ev else encode(task), partition,
                                             headers=task_headers(task)
                                             if isinstance(task, StepScheduled) else None)
                    for ev, payload in encoded if (task := open_tasks.get(ev.event_id))]
            for timer in timers:
                self._arm(timer, partition)
            return sent + await self._send_outbox(outbox, trace)

        self.writer.add(partition, [(key, payload) for _, payload in encoded],
                        follow_up if open_tasks or timers or outbox else None, ack)

    def _disarm_ended(self, decision: Accepted) -> None:
        """Forget the timers guarding what this decision ended: an attempt's timeout when the
        attempt ends, every timer of a run when the run ends (else they fire for nothing)."""
        run_id = decision.state.run_id if decision.state is not None else ""
        for ev in decision.events:
            if ev.event_type in RUN_ENDINGS:
                self.timers.disarm(run_id, whole_run=True)
            elif ev.event_type in STEP_ENDINGS and cast("StepEnding", ev).step_id:
                ev = cast("StepEnding", ev)
                attempt = getattr(ev, "attempt", None)
                if attempt is None or isinstance(ev, StepCancelled):  # whichever was out
                    self.timers.disarm(run_id, prefix=f"{run_id}:step_timeout:{ev.step_id}:")
                else:
                    self.timers.disarm(run_id, (timer_id(run_id, "step_timeout", ev.step_id,
                                                         attempt),))

    async def _send_outbox(self, outbox: tuple[Command, ...],
                           headers: list[tuple[str, bytes]] | None) -> list[Delivery[Any]]:
        """Send the commands a decision owes other runs (child starts, cancels, parent reports)."""
        sent = []
        for cmd in outbox:
            if isinstance(cmd, StartRun):  # a child run: pin the named workflow's definition
                cmd = await self.catalog.complete(cmd)
            sent.append(await self.producer.send(self.names.commands,
                                                 (cmd.run_id or "").encode(), encode(cmd),
                                                 headers=headers))
        return sent

    def _resend_outbox(self, decided: Decided, cmd: Command, now: datetime, partition: int,
                       ack: Ack | None) -> None:
        """A command redelivered after a crash: its events are logged, its outbox maybe not.

        The decision is made again from the state before it (decide is deterministic, and
        `now` is the record's own time), checked against the logged first event, and its
        outbox sent again with the same command ids; the receivers refuse what they already
        have (a run started twice, a step reported twice). Tasks and timers are not sent
        here: `recover` hands out every open task and re-arms every timer.
        """
        decision = decide(decided.before, cmd, now)
        if not isinstance(decision, Accepted) or not decision.events \
                or decision.events[0].event_id != decided.first_event_id:
            log.error("redelivered_command_decides_differently", command=cmd.event_type,
                      logged_first_event=decided.first_event_id)
            self.writer.add(partition, ack=ack)
            return
        outbox = decision.outbox
        trace = kafka_headers()

        async def follow_up() -> list[Delivery[Any]]:
            return await self._send_outbox(outbox, trace)

        self.writer.add(partition, follow_up=follow_up if outbox else None, ack=ack)
        self._handled(cmd.event_type, "redelivered")
        log.info("command_redelivered", command=cmd.event_type, outbox=len(outbox))

    def _arm(self, ev: TimerSet, partition: int) -> None:
        self.timers.arm(run_id=ev.run_id or "", workflow_id=ev.workflow_id,
                        workflow_version=ev.workflow_version, timer_id=ev.timer_id,
                        fire_at=ev.fire_at, partition=partition)

    async def _fire(self, cmd: Command, partition: int) -> None:
        await self.producer.send(self.names.commands, (cmd.run_id or "").encode(), encode(cmd),
                                 partition)

    async def _timer_task(self) -> None:
        await self.timers.run()

    async def _catalog_task(self) -> None:
        await self.catalog.follow()

    async def recover(self, partition: int) -> None:
        """Rebuild a newly owned partition, re-arm its timers and hand out its open tasks.

        Not those whose report already waits unread in the commands partition: their step ran.
        """
        runs = await self.cache.partition(partition)
        if self.cache.owned().get(partition) is not runs:
            return  # revoked while it was rebuilt: its timers and tasks are the new owner's
        ev: TimerSet | StepScheduled
        for ev in runs.timers.values():
            self._arm(ev, partition)
        open_tasks = dict(runs.tasks)  # those scheduled from now on are sent by `_emit`
        reported = await reported_attempts(self.settings.kafka, self.app.conf.id,
                                           self.commands.get_topic_name(), partition)
        if self.cache.owned().get(partition) is not runs:
            return
        sent = 0
        for key, ev in open_tasks.items():
            if runs.tasks.get(key) is not ev or (key[0], key[1], ev.attempt) in reported:
                continue  # decided meanwhile, or its report is waiting
            await self.producer.send(self.names.tasks, (ev.run_id or "").encode(), encode(ev),
                                     headers=task_headers(ev))
            sent += 1
        log.info("partition_recovered", partition=partition, open_runs=len(runs.open),
                 timers=len(runs.timers), tasks_redispatched=sent,
                 tasks_skipped=len(open_tasks) - sent)

    def _commands_partitions(self, tps: Any) -> set[int]:
        name = self.commands.get_topic_name()
        return {tp.partition for tp in tps if tp.topic == name}

    async def _on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        partitions = self._commands_partitions(assigned)
        _kept, dropped = await self.cache.resume(partitions)
        self.timers.disarm_partitions(dropped)
        log.info("partitions_assigned", partitions=sorted(partitions))
        for p in partitions:
            if not self.cache.known(p):
                spawn(self.recover(p), what=f"recover partition {p}")

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        partitions = self._commands_partitions(revoked)
        # Faust waits for every ack before this signal; waiting here too keeps a revoked
        # partition's last group written before its runs are held, whatever the setting.
        await self.writer.drain(partitions)
        # Faust revokes every partition at each rebalance (aiokafka's eager protocol): hold
        # them, timers armed, until the assignment says which ones are still ours.
        await self.cache.hold(partitions)
