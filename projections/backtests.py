"""Projects BacktestRequested into `backtests` and `backtest_runs` (the runs' own rows carry
the backtest's id from their RunRequested)."""

from __future__ import annotations

from typing import Any

from bend.core.events import BacktestRequested
from projections.writes import Write

__all__ = ["writes"]

_BACKTEST = """
INSERT INTO backtests (backtest_id, workflow_id, workflow_version, step_id, changes, selection,
                       live_downstream, actor, tenant, project, requested_at, event_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (backtest_id) DO NOTHING
"""

_RUNS = """
INSERT INTO backtest_runs (backtest_id, source_run_id, run_id, position)
SELECT $1, u.source_run_id, u.run_id, u.ord::integer
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u (source_run_id, run_id, ord)
ON CONFLICT (backtest_id, source_run_id) DO NOTHING
"""


def writes(ev: BacktestRequested) -> list[Write]:
    """The backtest's row and its pairs of runs."""
    ln = ("backtest", ev.backtest_id)
    pairs: list[Any] = [p for p in ev.runs or [] if isinstance(p, dict)]
    return [
        Write(ln, _BACKTEST, (ev.backtest_id, ev.workflow_id, ev.workflow_version, ev.step_id,
                              ev.changes or {}, ev.selection, ev.live_downstream, ev.actor,
                              ev.tenant, ev.project, ev.occurred_at, ev.event_id)),
        Write(ln, _RUNS, (ev.backtest_id, [str(p.get("source_run_id")) for p in pairs],
                          [str(p.get("run_id")) for p in pairs])),
    ]
