"""The executor agent: takes scheduled executor steps from the tasks topic, runs them, reports.

Each task is a `StepScheduled` for an agent, tool or http node. The executor reports
`ReportStepStarted` (only once a step has run for `report_started_after_ms`: a quicker step's
end carries its duration instead), every LLM and tool call it made (`RecordLlmCall`,
`RecordToolCall`) and then `CompleteStep` or `FailStep`, to the commands topic keyed by run_id.
Delivery is
at least once: a task can run twice after a crash, so side effects carry the step's
idempotency key, and the orchestrator rejects the second report. Reports are sent without
waiting for each delivery; a task's offset is released once all its reports are delivered.

An attempt cancelled while out is stopped (streams/withdrawals.py: a second agent reads the
`StepCancelled` the orchestrator puts beside the task), and a worker that may have been fenced
out of its group reports nothing until the group says it was not (streams/tenure.py). Metrics
and tracing wrap each task as interceptors (bend/ops/interceptors.py), as they wrap the
orchestrator's decisions.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import partial
from typing import Any

import faust
import structlog
from structlog.contextvars import bound_contextvars

from bend.contracts.codec import decode, encode
from bend.core.commands import Command, CompleteStep, FailStep, ReportStepStarted
from bend.core.errors import BendError
from bend.core.circuit import CircuitState, CircuitTransition
from bend.core.events import CircuitStateChanged, StepCancelled, StepScheduled
from bend.ops.interceptors import Interceptor, around_task, default_interceptors, settled_by
from bend.ops.metrics import CIRCUIT_TRANSITIONS, watch_circuits
from bend.settings import Settings
from bend.tracing import kafka_headers
from streams.app import topic_names
from streams.dlq import DeadLetters
from streams.acks import Ack, ack_when_delivered, once
from streams.hops import PROFILE
from streams.produce import Delivery, Producer, RecordSender
from streams.executors import ExecutionContext, execute
from streams.executors.circuits import CircuitBreakers
from streams.tenure import Tenure, group_generation
from streams.withdrawals import StepWithdrawn, Withdrawals

__all__ = ["Executor"]

log = structlog.get_logger(__name__)


def _command_id(task: StepScheduled, what: str) -> str:
    """Deterministic ids: a task run twice reports with the same ids."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task.event_id}:{what}"))


class Executor:
    """Runs executor steps with bounded concurrency and reports their outcomes as commands."""

    def __init__(self, app: faust.App, settings: Settings, worker_id: str, *,
                 producer: RecordSender | None = None,
                 context: ExecutionContext | None = None,
                 interceptors: Sequence[Interceptor] | None = None) -> None:
        names = topic_names(settings)
        self.app = app
        self.settings = settings
        self.worker_id = worker_id
        self.tasks = app.topic(names.tasks)  # the agent's source
        self.names = names
        self.producer: RecordSender = producer or Producer(app)
        self.dead_letters = DeadLetters(self.producer, names.dead_letters)
        self.context: ExecutionContext | None = context
        self._transitions: list[CircuitTransition] = []
        self.report_started_after_s = settings.workers.report_started_after_ms / 1000
        self.executed = 0
        self.in_flight = 0  # tasks being handled now (an idle executor has none)
        # Metrics and tracing wrap each task (bend.ops.interceptors): `_around` is entered
        # around its run and reports, `_settled` hears how it ended.
        chain = (default_interceptors(settings.ops.prices()) if interceptors is None
                 else tuple(interceptors))
        self._around = around_task(chain)
        self._settled = settled_by(chain)
        self.withdrawals = Withdrawals()
        w = settings.workers
        # streams.app.create_app gives the group the session timeout as its rebalance timeout
        self.tenure = Tenure(partial(group_generation, app), session_timeout_s=w.session_timeout_s,
                             rebalance_timeout_s=w.session_timeout_s,
                             heartbeat_s=w.heartbeat_interval_s,
                             rebalancing=lambda: bool(getattr(app, "rebalancing", False)))
        watch_circuits(self._circuit_states)

    def register(self) -> None:
        """Attach the agent (with the configured concurrency) and the context's lifecycle."""
        self.app.agent(self.tasks, name="executor",
                       concurrency=self.settings.workers.executor_concurrency)(self._agent)
        # Every record of the tasks topic reaches both agents (Faust acks it once both have):
        # this one reads cancellations at once, whatever the executor's actors are running.
        self.app.agent(self.tasks, name="executor-withdrawals")(self._withdrawals_agent)
        self.app.task(self.tenure.watch)

    async def _context(self) -> ExecutionContext:
        if self.context is None:
            self.context = ExecutionContext.create(
                self.settings, worker_id=self.worker_id,
                circuits=CircuitBreakers(on_transition=self._circuit_changed))
            if self.settings.llm.stream_tokens:
                self.context.tokens = partial(self.producer.send, self.names.agent_tokens)
        return self.context

    def _circuit_changed(self, t: CircuitTransition) -> None:
        """Keep a breaker's change; it is produced as an event after the current step."""
        CIRCUIT_TRANSITIONS.labels(t.target, t.to_state.value).inc()
        self._transitions.append(t)

    def _circuit_states(self) -> list[tuple[str, CircuitState]]:
        """Each target's breaker state, for `bend_circuit_state` (read at scrape time)."""
        return [] if self.context is None else self.context.circuits.states()

    async def _record_circuits(self, task: StepScheduled) -> list[Delivery[Any]]:
        sent = []
        while self._transitions:
            t = self._transitions.pop(0)
            log.warning("circuit_state_changed", target=t.target, to_state=t.to_state.value,
                        failures=t.consecutive_failures)
            event = CircuitStateChanged(
                event_id=str(uuid.uuid4()), run_id=task.run_id, workflow_id="",
                occurred_at=t.at, causation_id=task.event_id, target=t.target,
                from_state=t.from_state.value, to_state=t.to_state.value,
                consecutive_failures=t.consecutive_failures, open_until=t.open_until,
                worker_id=self.worker_id)
            sent.append(await self.producer.send(self.names.circuits, t.target.encode(),
                                                 encode(event)))
        return sent

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        # A coroutine, not an async generator: Faust then runs no per-event `_slurp` step
        # (which formats a debug line for every record whatever the log level).
        # Acks are manual: a task's offset is released once its reports are delivered, and
        # the agent takes the next task meanwhile instead of waiting for each delivery.
        # Agents are given a faust Stream, which has noack; faust's StreamT does not say so.
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            message = event.message
            self.in_flight += 1
            PROFILE.received(message)
            started = time.perf_counter()
            ack = once(partial(self._ack, event))
            try:
                deliveries = await self.handle(message.partition, message.offset,
                                               message.value, message.key, message.headers)
            except BaseException:
                ack()  # as Faust does when an agent raises: the record is not read again
                raise
            sent = PROFILE.since("handled", started)
            ack_when_delivered(deliveries,
                               partial(self._ack_timed, ack, sent) if PROFILE.enabled else ack)

    async def _withdrawals_agent(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            self.withdraw(event.message.value)

    def withdraw(self, raw: bytes) -> bool:
        """Stop the attempt a `StepCancelled` record names if it runs here (then True), and
        keep it from beginning if it has not; other records are the executor agent's."""
        try:
            ev = decode(raw)
        except BendError:
            return False  # the executor agent dead-letters it
        if not isinstance(ev, StepCancelled):
            return False
        stopped = self.withdrawals.note(ev)
        log.info("step_withdrawn", run_id=ev.run_id, step_id=ev.step_id, attempt=ev.attempt,
                 stopped=stopped)
        return stopped

    def _ack(self, event: faust.EventT[Any]) -> None:
        """Release a task's offset (called once, when its reports are delivered)."""
        self.in_flight -= 1
        event.ack()

    @staticmethod
    def _ack_timed(ack: Ack, sent: float) -> None:
        PROFILE.since("produce", sent)
        ack()

    async def handle(self, partition: int, offset: int, raw: bytes, key: bytes | None,
                     headers: Any = None) -> list[Delivery[Any]]:
        """Run one task record and send its reports; returns their delivery futures."""
        started = time.perf_counter()
        receipt = self.tenure.receipt()
        try:
            task = decode(raw)
            if isinstance(task, StepCancelled):
                return []  # a withdrawal: the withdrawals agent acts on it
            if not isinstance(task, StepScheduled):
                raise TypeError(f"{type(task).__name__} is no StepScheduled task")
        except (BendError, TypeError) as exc:
            return [await self.dead_letters.send(self.tasks.get_topic_name(), partition,
                                                 offset, key, raw, exc, headers)]
        PROFILE.since("decode", started)
        sent: list[Delivery[Any]] = []
        with bound_contextvars(run_id=task.run_id, step_id=task.step_id, event_id=task.event_id), \
                self._around(task, headers):
            if self.withdrawals.cancelled(task):
                log.info("step_not_begun", reason="cancelled before it began")
                self._settled(task, "cancelled", None)
                return []
            started = time.perf_counter()
            context = await self._context()
            reported: asyncio.Future[Delivery[Any]] | None = None

            def report_started() -> None:
                nonlocal reported
                reported = asyncio.ensure_future(self._send(ReportStepStarted(
                    **self._envelope(task, "started"), step_id=task.step_id,
                    attempt=task.attempt, worker_id=self.worker_id)))

            # A step still running after this long is reported started. A timer costs a few
            # µs per step; running the step as a task waited on with a timeout cost ~40.
            timer = asyncio.get_running_loop().call_later(self.report_started_after_s,
                                                          report_started)
            try:
                outcome = await self.withdrawals.run(task, execute(task, context))
            except StepWithdrawn:
                outcome = None
            finally:
                timer.cancel()
            if reported is not None:  # sent before the step's end, on the same partition
                sent.append(await reported)
            if outcome is None:
                log.info("step_stopped", reason="cancelled while it ran")
                self._settled(task, "cancelled", None)
                return sent
            if not await self.tenure.holds(receipt):
                # Fenced out while the step ran: its partition's new owner runs and reports it.
                log.warning("report_withheld", reason="the group moved the task's partition "
                            "while the step ran", succeeded=outcome.succeeded)
                self._settled(task, "withheld", outcome)
                return sent
            PROFILE.since("execute", started)
            duration_ms = int((time.perf_counter() - started) * 1000)
            for record in outcome.records:
                sent.append(await self._send(record))
            self._settled(task, "paused" if outcome.pause is not None
                          else "succeeded" if outcome.succeeded else "failed", outcome)
            if outcome.pause is not None:  # a gated tool call: the attempt resumes once decided
                sent.append(await self._send(outcome.pause))
            elif outcome.succeeded:
                sent.append(await self._send(CompleteStep(
                    **self._envelope(task, "completed"), step_id=task.step_id,
                    attempt=task.attempt, output=outcome.output, duration_ms=duration_ms)))
            else:
                log.info("step_failed", error_type=outcome.error_type,
                         retryable=outcome.retryable)
                sent.append(await self._send(FailStep(
                    **self._envelope(task, "failed"), step_id=task.step_id,
                    attempt=task.attempt, error_type=outcome.error_type or "StepError",
                    message=outcome.message or "", retryable=outcome.retryable)))
            sent += await self._record_circuits(task)
            self.executed += 1
        return sent

    def _envelope(self, task: StepScheduled, what: str) -> dict[str, Any]:
        return {
            "event_id": _command_id(task, what), "run_id": task.run_id,
            "workflow_id": task.workflow_id, "workflow_version": task.workflow_version,
            "occurred_at": datetime.now(timezone.utc), "causation_id": task.event_id,
            "correlation_id": task.correlation_id, "tenant": task.tenant,
            "project": task.project,
        }

    async def _send(self, cmd: Command) -> Delivery[Any]:
        return await self.producer.send(self.names.commands, (cmd.run_id or "").encode(),
                                        encode(cmd), headers=kafka_headers())

