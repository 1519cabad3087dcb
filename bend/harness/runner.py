"""Run a workflow in-process: the real `decide` and `apply`, fakes for executors, a clock that
jumps to the next timer instead of waiting for it.

The loop is the engine's, without Kafka: a command is decided against its run's state; the
accepted events are the run's log; executor steps go to the fakes, whose answers come back as
CompleteStep or FailStep; timers (delays, retries, timeouts) fire in due order once nothing
else is left to do, at their due time; commands for other runs (subworkflows) are decided too.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import replace
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from bend.core.apply import apply
from bend.core.commands import (
    CancelRun, Command, CompleteStep, DecideApproval, FailStep, FireTimer, SignalRun, StartRun,
)
from bend.core.decide import decide
from bend.core.definitions import definition_json, parse_definition
from bend.core.draft import Accepted, Rejected
from bend.core.errors import BendError
from bend.core.events import Event, StepScheduled
from bend.core.state import RunState
from bend.core.workflow import WorkflowDefinition
from bend.harness.fakes import (
    HANG, Agent, Fakes, Http, NoFake, StepFailure, Tool, tools_by_ref,
)

__all__ = ["Harness", "HarnessResult", "ReplayMismatch", "run_workflow"]

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class ReplayMismatch(BendError):
    """Folding the run's events anew gave another state than deciding them did: a bug in
    `decide` or `apply` (the engine's replay would disagree with its own run)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id}: folding its events with apply differs from the state "
                         "decide built; report it with the events")
        self.run_id = run_id


@dataclass(frozen=True, slots=True)
class HarnessResult:
    """A run as the harness left it: finished, or waiting for a signal, approval or nothing."""

    run_id: str
    state: RunState
    events: tuple[Event, ...]
    rejected: tuple[tuple[str, str], ...]  # (command type, reason) of every refused command
    now: datetime  # the harness clock when it stopped

    @property
    def status(self) -> str:
        """queued | pending | running | completed | failed | cancelled."""
        return self.state.status.value

    @property
    def output(self) -> Any:
        """The run's output (None unless completed)."""
        return self.state.output

    @property
    def event_types(self) -> list[str]:
        """The events' type names, in seq order."""
        return [type(e).__name__ for e in self.events]

    def step_output(self, step_id: str) -> Any:
        """A step's (latest) output."""
        return self.state.step(step_id).output

    def step_status(self, step_id: str) -> str:
        """A step's status."""
        return self.state.step(step_id).status.value


@dataclass(order=True)
class _Due:
    fire_at: datetime
    order: int
    timer_id: str = field(compare=False)
    run_id: str = field(compare=False)


class Harness:
    """One workflow, run in-process as many times as asked; see `run_workflow`."""

    def __init__(self, definition: Any, *,
                 tools: Mapping[str, Tool] | Iterable[Any] | None = None,
                 http: Http | None = None, agents: Mapping[str, Agent] | None = None,
                 workflows: Mapping[str, Any] | None = None, start: datetime = EPOCH,
                 step_duration: timedelta = timedelta(0), max_commands: int = 100_000) -> None:
        self.definition = _definition_json(definition)
        self.fakes = Fakes(tools_by_ref(tools), http, dict(agents or {}))
        self.workflows = {name: _definition_json(d)
                          for name, d in (workflows or {}).items()}
        self.now = start
        self.step_duration = step_duration
        self.max_commands = max_commands
        self.states: dict[str, RunState] = {}
        self.logs: dict[str, list[Event]] = {}
        self.rejected: list[tuple[str, str]] = []
        self._queue: list[Command] = []
        self._timers: list[_Due] = []
        self._order = 0
        self._run_id: str | None = None

    # -- doors, as a user's or a person's commands ----------------------------------------------

    def start(self, input: Any = None, *, run_id: str | None = None,
              idempotency_key: str | None = None) -> HarnessResult:
        """Start the run and go as far as it can without outside help."""
        run_id = run_id or str(uuid.uuid4())
        self._run_id = run_id
        name = str(self.definition.get("name", "workflow"))
        self._send(StartRun(**self._envelope(run_id, f"wf-{name}", 1), input=input,
                            definition=self.definition, idempotency_key=idempotency_key))
        return self.run()

    def signal(self, name: str, payload: Any = None) -> HarnessResult:
        """Send the run the signal `name`, then go on."""
        self._send(SignalRun(**self._envelope(self.run_id), name=name, payload=payload,
                             sent_by="harness"))
        return self.run()

    def approve(self, step_id: str, answer: Any = None, comment: str = "") -> HarnessResult:
        """Approve the waiting approval step, then go on."""
        return self._decide_approval(step_id, True, answer, comment)

    def reject(self, step_id: str, comment: str = "") -> HarnessResult:
        """Reject the waiting approval step, then go on."""
        return self._decide_approval(step_id, False, None, comment)

    def cancel(self, reason: str = "") -> HarnessResult:
        """Cancel the run, then go on."""
        self._send(CancelRun(**self._envelope(self.run_id), reason=reason,
                             requested_by="harness"))
        return self.run()

    def advance(self, by: timedelta) -> HarnessResult:
        """Let `by` pass on the clock, firing the timers due within it."""
        until = self.now + by
        self._drain(until)
        self.now = max(self.now, until)
        return self.result()

    def _decide_approval(self, step_id: str, approved: bool, answer: Any,
                         comment: str) -> HarnessResult:
        self._send(DecideApproval(**self._envelope(self.run_id), step_id=step_id,
                                  approved=approved, answer=answer, comment=comment,
                                  decided_by="harness"))
        return self.run()

    # -- the loop ---------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """The run `start` began."""
        if self._run_id is None:
            raise RuntimeError("no run yet: call start() first")
        return self._run_id

    def run(self) -> HarnessResult:
        """Decide every queued command, firing timers when nothing else is left, until the run
        finishes or only waits for the outside (a signal, an approval)."""
        self._drain(None)
        return self.result()

    def result(self) -> HarnessResult:
        """The run as it stands; its events folded anew must give the same state."""
        run_id = self.run_id
        events = tuple(self.logs.get(run_id, ()))
        state = self.states[run_id]
        folded: RunState | None = None
        for event in events:
            folded = apply(folded, event)
        if folded != state:
            raise ReplayMismatch(run_id)
        return HarnessResult(run_id, state, events, tuple(self.rejected), self.now)

    def _drain(self, until: datetime | None) -> None:
        decided = 0
        while True:
            if not self._queue and (self._main_finished() or not self._fire_next(until)):
                return
            cmd = self._queue.pop(0)
            decided += 1
            if decided > self.max_commands:
                raise RuntimeError(f"more than {self.max_commands} commands: a loop without end?")
            self._decide(cmd)

    def _main_finished(self) -> bool:
        state = self.states.get(self.run_id)
        return state is not None and state.is_finished

    def _fire_next(self, until: datetime | None) -> bool:
        while self._timers:
            due = self._timers[0]
            if until is not None and due.fire_at > until:
                return False
            heapq.heappop(self._timers)
            state = self.states.get(due.run_id)
            if state is None or due.timer_id not in state.timers or state.is_finished:
                continue  # cancelled, fired, or its run ended
            self.now = max(self.now, due.fire_at)
            self._send(FireTimer(
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"fire:{due.timer_id}")),
                run_id=due.run_id, workflow_id=state.workflow_id,
                workflow_version=state.workflow_version, occurred_at=self.now,
                correlation_id=due.run_id, timer_id=due.timer_id))
            return True
        return False

    def _send(self, cmd: Command) -> None:
        self._queue.append(cmd)

    def _decide(self, cmd: Command) -> None:
        run_id = cmd.run_id or ""
        if isinstance(cmd, StartRun) and cmd.definition is None:
            cmd = self._resolved(cmd)
        decision = decide(self.states.get(run_id), cmd, self.now)
        if isinstance(decision, Rejected):
            self.rejected.append((type(cmd).__name__, decision.reason))
            return
        assert isinstance(decision, Accepted) and decision.state is not None
        self.states[run_id] = decision.state
        self.logs.setdefault(run_id, []).extend(decision.events)
        for timer in decision.timers():
            self._order += 1
            heapq.heappush(self._timers, _Due(timer.fire_at, self._order, timer.timer_id,
                                              run_id))
        self._queue.extend(decision.outbox)
        for task in decision.tasks():
            self._execute(task)

    def _resolved(self, cmd: StartRun) -> StartRun:
        """A subworkflow's StartRun names its workflow: give it the definition passed in."""
        definition = self.workflows.get(cmd.workflow_id)
        if definition is None:
            raise BendError(f"subworkflow {cmd.workflow_id!r} is not known to the harness: pass "
                            "its definition in workflows={name: definition}")
        return replace(cmd, definition=definition)

    def _execute(self, task: StepScheduled) -> None:
        envelope: dict[str, Any] = {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task.event_id}:reported")),
            "run_id": task.run_id, "workflow_id": task.workflow_id,
            "workflow_version": task.workflow_version,
            "occurred_at": self.now + self.step_duration, "causation_id": task.event_id,
            "correlation_id": task.correlation_id, "tenant": task.tenant,
            "project": task.project,
        }
        duration_ms = int(self.step_duration.total_seconds() * 1000)
        try:
            output = self.fakes.call(task.node_type, task.step_id, task.input)
        except StepFailure as exc:
            self._send(FailStep(**envelope, step_id=task.step_id, attempt=task.attempt,
                                error_type=exc.error_type, message=exc.message,
                                retryable=exc.retryable))
            return
        except NoFake:
            raise  # the test is wrong, not the step
        except Exception as exc:  # as the tool executor: retried unless it says otherwise
            self._send(FailStep(**envelope, step_id=task.step_id, attempt=task.attempt,
                                error_type=type(exc).__name__, message=str(exc),
                                retryable=bool(getattr(exc, "retryable", True))))
            return
        if output is HANG:
            return
        self._send(CompleteStep(**envelope, step_id=task.step_id, attempt=task.attempt,
                                output=output, duration_ms=duration_ms))

    def _envelope(self, run_id: str, workflow_id: str | None = None,
                  workflow_version: int | None = None) -> dict[str, Any]:
        state = self.states.get(run_id)
        return {
            "event_id": str(uuid.uuid4()), "run_id": run_id,
            "workflow_id": workflow_id or (state.workflow_id if state else ""),
            "workflow_version": workflow_version or (state.workflow_version if state else 0),
            "occurred_at": self.now, "correlation_id": run_id,
        }


def _definition_json(definition: Any) -> dict[str, Any]:
    """A dict, a YAML-loaded mapping, a WorkflowDefinition or a bend.sdk Workflow, checked."""
    build = getattr(definition, "build", None)
    if callable(build):  # a bend.sdk Workflow
        definition = build()
    if isinstance(definition, WorkflowDefinition):
        definition = definition_json(definition)
    return definition_json(parse_definition(definition))


def run_workflow(definition: Any, input: Any = None, *,
                 tools: Mapping[str, Tool] | Iterable[Any] | None = None,
                 http: Http | None = None, agents: Mapping[str, Agent] | None = None,
                 workflows: Mapping[str, Any] | None = None,
                 start: datetime = EPOCH) -> HarnessResult:
    """Run `definition` (a dict, YAML-loaded mapping or WorkflowDefinition) with `input` to
    its end, or until it waits for the outside; tools, HTTP and agents are the fakes given.

        result = run_workflow(definition, {"q": "kafka"},
                              tools={"web_search@1": lambda inputs: {"hits": []}})
        assert result.status == "completed"
    """
    return Harness(definition, tools=tools, http=http, agents=agents, workflows=workflows,
                   start=start).start(input)
