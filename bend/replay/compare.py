"""The folded state beside the read model: every field where the projection says otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bend.core.state import RunState, StepStatus

__all__ = ["differences"]

# Words the read model uses for the same status (its columns' comments list them).
_RUN_ALIASES = {"requested": {"requested", "queued", "pending"}}
_STEP_ALIASES = {StepStatus.RETRY_WAIT.value: {"retry_wait", "retrying"}}


def differences(state: RunState, run_row: Mapping[str, Any] | None,
                step_rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per disagreement between the fold and the projection (empty: they agree)."""
    if run_row is None:
        return [f"run {state.run_id} is not in the projection (is the projector running?)"]
    out: list[str] = []
    status = state.status.value
    if run_row.get("status") not in _RUN_ALIASES.get(status, {status}):
        out.append(f"run status: fold {status}, projection {run_row.get('status')}")
    if state.is_finished and run_row.get("output") != state.output:
        out.append(f"run output: fold {state.output!r}, projection {run_row.get('output')!r}")
    rows = {r["step_id"]: r for r in step_rows}
    for step_id, step in sorted(state.steps.items()):
        row = rows.pop(step_id, None)
        if row is None:
            out.append(f"step {step_id}: fold {step.status.value}, missing from the projection")
            continue
        want = step.status.value
        if row.get("status") not in _STEP_ALIASES.get(want, {want}):
            out.append(f"step {step_id} status: fold {want}, projection {row.get('status')}")
        if step.attempt and row.get("attempts") != step.attempt:
            out.append(f"step {step_id} attempts: fold {step.attempt}, "
                       f"projection {row.get('attempts')}")
        if step.status is StepStatus.SUCCEEDED and row.get("output") != step.output:
            out.append(f"step {step_id} output: fold {step.output!r}, "
                       f"projection {row.get('output')!r}")
    for step_id in sorted(rows):
        out.append(f"step {step_id}: in the projection ({rows[step_id].get('status')}), "
                   "not in the fold")
    return out
