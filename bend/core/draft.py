"""Decisions and the draft that builds one: events are folded as they are made.

Folding each event with `apply` the moment `decide` makes it means the rest of the decision
reads the state as it will be, and an event `apply` would refuse can never leave `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bend.core import ids
from bend.core.apply import apply
from bend.core.commands import Command
from bend.core.events import Event, StepCancelled, StepResumed, StepScheduled, TimerSet
from bend.core.kinds import EXECUTOR_NODE_TYPES
from bend.core.graph import Plan
from bend.core.state import RunState

__all__ = ["Accepted", "Decision", "Draft", "Rejected"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The command's events (to append to the run's log, in order) and commands for other runs."""

    events: tuple[Event, ...]
    outbox: tuple[Command, ...] = ()
    state: RunState | None = None  # the run's state after `events`

    def tasks(self) -> tuple[StepScheduled, ...]:
        """Executor steps (agent, tool, http) scheduled (or resumed) here and still open
        afterwards."""
        if self.state is None:
            return ()
        return tuple(
            ev.task() if isinstance(ev, StepResumed) else ev for ev in self.events
            if isinstance(ev, StepScheduled | StepResumed) and ev.node_type in EXECUTOR_NODE_TYPES
            and self.state.step(ev.step_id).status.attempt_open
            and self.state.step(ev.step_id).attempt == ev.attempt
        )

    def withdrawn(self) -> tuple[StepCancelled, ...]:
        """Executor steps cancelled here while an attempt was out: their executor stops it."""
        if self.state is None:
            return ()
        return tuple(
            ev for ev in self.events
            if isinstance(ev, StepCancelled) and ev.attempt > 0
            and self.state.step(ev.step_id).node_type in EXECUTOR_NODE_TYPES
        )

    def timers(self) -> tuple[TimerSet, ...]:
        """Timers set here and still pending afterwards: the ones to arm."""
        if self.state is None:
            return ()
        return tuple(ev for ev in self.events
                     if isinstance(ev, TimerSet) and ev.timer_id in self.state.timers)


@dataclass(frozen=True, slots=True)
class Rejected:
    """The command changes nothing; `reason` says why, `code` names the kind."""

    reason: str
    code: str = "rejected"  # unknown_run | finished | duplicate | stale | invalid


Decision = Accepted | Rejected


class Draft:
    """A decision being made: the command, the time, the state so far, events and outbox."""

    def __init__(self, cmd: Command, now: datetime, state: RunState | None) -> None:
        self.cmd = cmd
        self.now = now
        self.state = state
        self.events: list[Event] = []
        self.outbox: list[Command] = []
        self.touched: set[str] = set()  # step instances this decision changed

    @property
    def run(self) -> RunState:
        """The state so far (a run exists once RunRequested is made)."""
        assert self.state is not None
        return self.state

    @property
    def plan(self) -> Plan:
        """The run's plan (decide only drafts steps for runs whose definition is valid)."""
        assert self.state is not None and self.state.plan is not None
        return self.state.plan

    def emit(self, cls: type[Event], *, at: datetime | None = None, **fields: Any) -> Event:
        """Make the next event of the run (at `now`, or `at`) and fold it into the state."""
        cmd, state = self.cmd, self.state
        event = cls(
            event_id=ids.event_id(cmd.event_id, len(self.events)),
            run_id=state.run_id if state else cmd.run_id,
            workflow_id=state.workflow_id if state else cmd.workflow_id,
            workflow_version=state.workflow_version if state else cmd.workflow_version,
            seq=(state.seq if state else 0) + 1,
            occurred_at=at or self.now,
            causation_id=cmd.event_id,
            correlation_id=(state.correlation_id if state
                            else cmd.correlation_id or cmd.run_id),
            tenant=state.tenant if state else cmd.tenant,
            project=state.project if state else cmd.project,
            **fields,
        )
        self.state = apply(state, event)
        self.events.append(event)
        if fields.get("step_id"):
            self.touched.add(fields["step_id"])
        return event

    def send(self, cls: type[Command], run_id: str, **fields: Any) -> Command:
        """Queue a command for another run (a child, or this run's parent)."""
        state = self.run
        envelope = {
            "event_id": ids.command_id(self.cmd.event_id, len(self.outbox)),
            "run_id": run_id,
            "workflow_id": fields.pop("workflow_id", state.workflow_id),
            "workflow_version": fields.pop("workflow_version", 0),
            "occurred_at": self.now,
            "causation_id": self.events[-1].event_id if self.events else self.cmd.event_id,
            "correlation_id": state.correlation_id,
            "tenant": state.tenant,
            "project": state.project,
        }
        command = cls(**envelope, **fields)
        self.outbox.append(command)
        return command

    def accepted(self) -> Accepted:
        """The decision: every event made and every command queued."""
        return Accepted(tuple(self.events), tuple(self.outbox), self.state)
