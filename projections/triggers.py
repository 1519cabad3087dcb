"""Projects TriggerFired into `trigger_firings` (one per dedupe key), `triggers` and `audit`."""

from __future__ import annotations

from bend.core.events import TriggerFired
from projections.audit import COLUMNS, row_args
from projections.writes import Write

__all__ = ["writes"]

# A second firing for the same dedupe key is a duplicate: it inserts, counts and audits nothing.
_FIRED = f"""
WITH firing AS (
    INSERT INTO trigger_firings (event_id, trigger_id, dedupe_key, workflow_id, run_id, due_at,
                                 fired_at, input)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT DO NOTHING
    RETURNING 1
), audited AS (
    INSERT INTO audit ({COLUMNS})
    SELECT $10, $11, $12, $13, $14, $15, $16, $17, $18, $19 WHERE EXISTS (SELECT 1 FROM firing)
    ON CONFLICT (event_id) DO NOTHING
)
INSERT INTO triggers (trigger_id, workflow_id, trigger_type, firings, first_fired_at,
                      last_fired_at)
SELECT $2, $4, $9, 1, $7, $7 WHERE EXISTS (SELECT 1 FROM firing)
ON CONFLICT (trigger_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id, trigger_type = EXCLUDED.trigger_type,
    firings = triggers.firings + 1,
    first_fired_at = least(triggers.first_fired_at, EXCLUDED.first_fired_at),
    last_fired_at = greatest(triggers.last_fired_at, EXCLUDED.last_fired_at)
"""


def writes(ev: TriggerFired) -> list[Write]:
    """Apply one firing, unless its dedupe key already fired."""
    audit = row_args(ev)
    assert audit is not None  # TriggerFired is audited
    return [Write(("trigger", ev.trigger_id), _FIRED,
                  (ev.event_id, ev.trigger_id, ev.dedupe_key, ev.workflow_id, ev.run_id,
                   ev.due_at, ev.occurred_at, ev.input, ev.trigger_type, *audit))]
