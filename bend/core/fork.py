"""Forks: a new run that reuses a finished run's recorded outputs up to a chosen step.

`fork_seed(source, from_step)` picks the outputs to reuse: every top-level step that succeeded
in the source run and does not wait, directly or not, on `from_step` (the fork re-runs
`from_step`, the loops and parallels around it, and everything after). `start_fork` starts the
fork: each seeded step is recorded as StepScheduled + StepSucceeded with its recorded output,
then the run goes on as usual. The fork's log is self-contained, like every run's.

A backtest's fork also carries `replayed_outputs(source, from_step)`: the recorded outputs of
the steps after `from_step` that are not pure. Its RunRequested holds them, and the cascade
records each such step as done with its recorded output when it would begin it (it fails the
step if the source has none), so only `from_step` and the pure steps after it run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bend.core.commands import StartRun
from bend.core.decide import start_run
from bend.core.draft import Decision, Rejected
from bend.core.errors import BendError
from bend.core.ids import split_instance
from bend.core.kinds import NODE_KINDS
from bend.core.state import RunState, StepStatus

__all__ = ["UnknownStep", "fork_seed", "replayed_outputs", "start_fork"]


class UnknownStep(BendError):
    """The step to fork from is not in the source run's definition."""

    status = 404

    def __init__(self, run_id: str, step_id: str) -> None:
        super().__init__(f"run {run_id} has no step {step_id!r}; fork from one of the steps of "
                         "its definition (see `bend replay <run_id>`)")
        self.run_id = run_id
        self.step_id = step_id


def fork_seed(source: RunState, from_step: str) -> dict[str, Any]:
    """The recorded outputs (by step id) a fork from `from_step` reuses, in definition order."""
    plan = source.plan
    if plan is None or from_step not in plan.nodes:
        raise UnknownStep(source.run_id, from_step)
    rerun = plan.rerun_from(from_step)
    return {s: source.step(s).output for s in plan.scope_steps[None]
            if s not in rerun and source.step(s).status is StepStatus.SUCCEEDED}


def replayed_outputs(source: RunState, from_step: str) -> dict[str, Any]:
    """The recorded outputs (by step instance) a backtest forked from `from_step` reuses instead
    of running again: those of the steps after it that are not pure (agents, tools, http calls,
    child runs, delays, approvals and waits) and succeeded in the source run."""
    plan = source.plan
    if plan is None or from_step not in plan.nodes:
        raise UnknownStep(source.run_id, from_step)
    after = plan.rerun_from(from_step) - {from_step}
    return {inst: st.output for inst, st in source.steps.items()
            if st.status is StepStatus.SUCCEEDED and (node := split_instance(inst)[0]) in after
            and not NODE_KINDS[plan.nodes[node].type].pure}


def start_fork(cmd: StartRun, seed: Mapping[str, Any], now: datetime) -> Decision:
    """Start the forked run `cmd` (forked_from_run_id set) with `seed`'s outputs already done."""
    if not cmd.forked_from_run_id or not cmd.fork_step_id:
        return Rejected("a fork's StartRun names forked_from_run_id and fork_step_id", "invalid")
    return start_run(None, cmd, now, seed=seed)
