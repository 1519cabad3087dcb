"""The node kinds: one row per step type, with what every layer needs to know of it.

Each row gives the kind's model (bend/core/nodes.py), who runs it, how it begins, whether its
end is reported from outside and whether it is retried (and takes `retry` and `timeout`), what
it holds of other steps, and what a begun, unfinished step of the kind waits on. The
definitions, the plan (graph, references), the decisions (cascade, decide, outcomes), explain,
the UI's waiting reasons and the workers read these rows instead of lists of their own.

Adding a kind: a row here, its model in nodes.py (its fields, what it renders for its runner,
what it evaluates, and for a kind that awaits, what it waits for: `awaited`, which explain and
the UI tell), its Avro schema if it adds events or commands, and its tests. Only a new way to
begin (a value of `Begin`) needs a branch of its own in the cascade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bend.core.frozen import FrozenMap
from bend.core.nodes import (
    AgentStep, ApprovalStep, ConditionStep, DelayStep, HttpStep, LoopStep, ParallelStep,
    StepBase, SubworkflowStep, ToolStep, TransformStep, WaitStep,
)

__all__ = [
    "Begin", "EXECUTOR_NODE_TYPES", "Members", "NODE_KINDS", "NODE_TYPES", "NodeKind",
    "RETRIED_NODE_TYPES", "Runner", "Wait", "kind_of",
]


class Runner(StrEnum):
    """Who carries a step out."""

    ENGINE = "engine"  # the orchestrator, within its decisions
    EXECUTOR = "executor"  # an executor worker, which reports the attempt's start and end
    CHILD_RUN = "child_run"  # a child run, whose end the engine reports as the step's


class Begin(StrEnum):
    """What happens when a step's dependencies have finished (bend/core/cascade.py)."""

    EVALUATE = "evaluate"  # computes its output and succeeds in the same decision
    OPEN = "open"  # opens its branches, ends at its join
    ITERATE = "iterate"  # opens its iterations, ends after the last
    TIMER = "timer"  # sets a durable timer, succeeds when it fires
    SCHEDULE = "schedule"  # scheduled for its runner, with its timeout timer
    # Waits, with its timeout timer, for a command from outside (a person, a signal).
    AWAIT = "await"


class Members(StrEnum):
    """What a container holds of other steps, and how they wait for it."""

    ARMS = "arms"  # a member runs after the container, if its arm was taken
    BRANCHES = "branches"  # a member runs while the container is open
    BODY = "body"  # the members are a scope of their own, run once per iteration


class Wait(StrEnum):
    """What a begun, unfinished step of the kind waits on (explain and the UI tell it)."""

    NOTHING = "nothing"  # it finishes in the decision that begins it
    MEMBERS = "members"  # its branches or iterations
    TIMER = "timer"  # its timer
    WORKER = "worker"  # an executor to take and finish it
    CHILD_RUN = "child_run"  # its child run
    APPROVAL = "approval"  # a person's decision (DecideApproval), or its timeout's default
    SIGNAL = "signal"  # a named signal (SignalRun), or its timeout


@dataclass(frozen=True, slots=True)
class NodeKind:
    """One kind of step: its model and how every layer treats it."""

    name: str  # the `type` of a step in a definition
    model: type[StepBase]
    runner: Runner
    begins: Begin
    waits_on: Wait
    reported: bool  # its attempts end by CompleteStep/FailStep from outside the engine
    retried: bool  # it takes `retry` and `timeout`; a failed attempt may be tried again
    members: Members | None = None
    timed: bool | None = None  # it takes `timeout` (None: if it is retried)
    metered: bool = False  # its attempts call LLMs, within the run's budget (bend.core.budgets)

    @property
    def takes_timeout(self) -> bool:
        """Whether a step of the kind may set `timeout`."""
        return self.retried if self.timed is None else self.timed

    @property
    def has_start(self) -> bool:
        """Whether it has a start phase before its end (its members begin in between)."""
        return self.begins in (Begin.OPEN, Begin.ITERATE)

    @property
    def pure(self) -> bool:
        """Whether the engine computes it within its decisions from the run alone: no worker,
        child run, timer, person or signal (a backtest runs these again, reuses the others)."""
        return self.begins in (Begin.EVALUATE, Begin.OPEN, Begin.ITERATE)

    @property
    def is_scope(self) -> bool:
        """Whether its members form a scope of their own (a loop's body)."""
        return self.members is Members.BODY


def _engine(name: str, model: type[StepBase], begins: Begin, waits_on: Wait,
            members: Members | None = None) -> NodeKind:
    return NodeKind(name, model, Runner.ENGINE, begins, waits_on, reported=False, retried=False,
                    members=members)


def _awaits(name: str, model: type[StepBase], waits_on: Wait) -> NodeKind:
    return NodeKind(name, model, Runner.ENGINE, Begin.AWAIT, waits_on, reported=False,
                    retried=False, timed=True)


def _outside(name: str, model: type[StepBase], runner: Runner, waits_on: Wait,
             metered: bool = False) -> NodeKind:
    return NodeKind(name, model, runner, Begin.SCHEDULE, waits_on, reported=True, retried=True,
                    metered=metered)


# In the order definitions list them in messages ("use one of agent, tool, ...").
NODE_KINDS: Mapping[str, NodeKind] = FrozenMap((kind.name, kind) for kind in (
    _outside("agent", AgentStep, Runner.EXECUTOR, Wait.WORKER, metered=True),
    _outside("tool", ToolStep, Runner.EXECUTOR, Wait.WORKER),
    _outside("http", HttpStep, Runner.EXECUTOR, Wait.WORKER),
    _engine("transform", TransformStep, Begin.EVALUATE, Wait.NOTHING),
    _engine("condition", ConditionStep, Begin.EVALUATE, Wait.NOTHING, Members.ARMS),
    _engine("loop", LoopStep, Begin.ITERATE, Wait.MEMBERS, Members.BODY),
    _engine("parallel", ParallelStep, Begin.OPEN, Wait.MEMBERS, Members.BRANCHES),
    _engine("delay", DelayStep, Begin.TIMER, Wait.TIMER),
    _outside("subworkflow", SubworkflowStep, Runner.CHILD_RUN, Wait.CHILD_RUN),
    _awaits("approval", ApprovalStep, Wait.APPROVAL),
    _awaits("wait", WaitStep, Wait.SIGNAL),
))

NODE_TYPES: tuple[str, ...] = tuple(NODE_KINDS)
EXECUTOR_NODE_TYPES = frozenset(k.name for k in NODE_KINDS.values() if k.runner is Runner.EXECUTOR)
RETRIED_NODE_TYPES = frozenset(k.name for k in NODE_KINDS.values() if k.retried)


def kind_of(node_type: str | None) -> NodeKind | None:
    """The kind named `node_type` (a step's `type`, or a read model's node_type); None if none."""
    return NODE_KINDS.get(node_type) if node_type is not None else None
