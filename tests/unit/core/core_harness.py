"""Drives one run through `decide` and `apply` the way the orchestrator does, for core tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from bend.core.apply import fold
from bend.core.commands import (
    CancelRun, CancelStep, Command, CompleteStep, DecideApproval, FailStep, FireTimer,
    ReportStepStarted, SignalRun, StartRun,
)
from bend.core.decide import Accepted, Rejected, decide
from bend.core.definitions import definition_json, load_definition
from bend.core.events import Event
from bend.core.state import RunState, StepStatus

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def wf(steps: str, extra: str = "") -> str:
    """A workflow document named `t` with these steps (YAML list items, indented by two)."""
    return f"name: t\n{extra}steps:\n{steps}"


@dataclass
class Run:
    """A run under test: its log, its live state, the outbox, and a clock."""

    definition: Any
    input: Any = None
    run_id: str = "run-1"
    now: datetime = T0
    log: list[Event] = field(default_factory=list)
    outbox: list[Command] = field(default_factory=list)
    sent: list[Command] = field(default_factory=list)  # the commands accepted, in order
    state: RunState | None = None
    last: Accepted | Rejected | None = None
    _n: int = 0

    @classmethod
    def of(cls, yaml_text: str, input: Any = None, **kw: Any) -> Run:
        """A run of the workflow in `yaml_text`, not yet started."""
        return cls(definition_json(load_definition(yaml_text)), input, **kw)

    def envelope(self) -> dict[str, Any]:
        """Envelope fields for the next command (fresh event_id)."""
        self._n += 1
        return {"event_id": f"cmd-{self._n}", "run_id": self.run_id, "workflow_id": "wf",
                "occurred_at": self.now}

    def send(self, cmd: Command) -> Accepted | Rejected:
        """Decide `cmd`; keep its events and outbox when accepted."""
        decision = decide(self.state, cmd, self.now)
        self.last = decision
        if isinstance(decision, Accepted):
            self.sent.append(cmd)
            self.log.extend(decision.events)
            self.outbox.extend(decision.outbox)
            self.state = fold(decision.events, self.state)
            assert self.state == decision.state
        return decision

    def ok(self, cmd: Command) -> Accepted:
        """Decide `cmd`, which must be accepted."""
        decision = self.send(cmd)
        assert isinstance(decision, Accepted), decision
        return decision

    def start(self, **kw: Any) -> Accepted:
        """StartRun."""
        return self.ok(StartRun(**self.envelope(), input=self.input, definition=self.definition,
                                **kw))

    def complete(self, step_id: str, output: Any = None, attempt: int | None = None) -> Accepted:
        """CompleteStep for the step's open attempt (or `attempt`)."""
        return self.ok(CompleteStep(**self.envelope(), step_id=step_id,
                                    attempt=attempt or self.st(step_id).attempt, output=output))

    def fail(self, step_id: str, error_type: str = "Boom", retryable: bool = True,
             message: str = "it broke") -> Accepted:
        """FailStep for the step's open attempt."""
        return self.ok(FailStep(**self.envelope(), step_id=step_id,
                                attempt=self.st(step_id).attempt, error_type=error_type,
                                message=message, retryable=retryable))

    def started(self, step_id: str) -> Accepted:
        """ReportStepStarted for the step's open attempt."""
        return self.ok(ReportStepStarted(**self.envelope(), step_id=step_id,
                                         attempt=self.st(step_id).attempt, worker_id="w1"))

    def timer(self, purpose: str, step_id: str | None = None) -> str:
        """The id of the pending timer with this purpose (and step)."""
        assert self.state is not None
        [found] = [t.timer_id for t in self.state.timers.values()
                   if t.purpose == purpose and t.step_id == step_id]
        return found

    def fire(self, purpose: str, step_id: str | None = None) -> Accepted:
        """Move the clock to the timer's due time and FireTimer it."""
        assert self.state is not None
        timer_id = self.timer(purpose, step_id)
        self.now = max(self.now, self.state.timers[timer_id].fire_at)
        return self.ok(FireTimer(**self.envelope(), timer_id=timer_id))

    def decide_approval(self, step_id: str, approved: bool = True, answer: Any = None,
                        by: str = "key:k1", comment: str = "") -> Accepted | Rejected:
        """DecideApproval for the approval step `step_id` (accepted or not)."""
        return self.send(DecideApproval(**self.envelope(), step_id=step_id, approved=approved,
                                        decided_by=by, comment=comment, answer=answer))

    def signal(self, name: str, payload: Any = None) -> Accepted | Rejected:
        """SignalRun `name` with `payload` (accepted or not)."""
        return self.send(SignalRun(**self.envelope(), name=name, payload=payload,
                                   sent_by="key:k1"))

    def cancel(self, reason: str = "no longer needed") -> Accepted:
        """CancelRun."""
        return self.ok(CancelRun(**self.envelope(), reason=reason, requested_by="tester"))

    def cancel_step(self, step_id: str) -> Accepted:
        """CancelStep."""
        return self.ok(CancelStep(**self.envelope(), step_id=step_id, reason="not needed"))

    def st(self, step_id: str) -> Any:
        """The state of one step instance."""
        assert self.state is not None
        return self.state.step(step_id)

    def status(self, step_id: str) -> StepStatus:
        """The status of one step instance."""
        return self.st(step_id).status

    def types(self, decision: Accepted | None = None) -> list[str]:
        """Event types of `decision` (default: the last one), with step ids where they have one."""
        decision = decision or self.last
        assert isinstance(decision, Accepted)
        return [f"{e.event_type}:{getattr(e, 'step_id', None)}" if getattr(e, "step_id", None)
                else e.event_type for e in decision.events]

    def open_tasks(self) -> list[str]:
        """Step instances whose attempt is out with an executor or a child run."""
        assert self.state is not None
        return [s.step_id for s in self.state.steps.values()
                if s.status.attempt_open and s.node_type in ("agent", "tool", "http",
                                                             "subworkflow")]

    def advance_clock(self, seconds: float) -> None:
        """Move the clock on."""
        self.now += timedelta(seconds=seconds)
