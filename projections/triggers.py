"""Projects TriggerFired into `trigger_firings` (one per dedupe key) and `triggers`."""

from __future__ import annotations

import asyncpg

from bend.core.events import TriggerFired

__all__ = ["project"]

# A second firing for the same dedupe key is a duplicate: it inserts nothing and counts nothing.
_FIRING = """
INSERT INTO trigger_firings (event_id, trigger_id, dedupe_key, workflow_id, run_id, due_at,
                             fired_at, input)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING
RETURNING 1
"""

_TRIGGER = """
INSERT INTO triggers (trigger_id, workflow_id, trigger_type, firings, first_fired_at,
                      last_fired_at)
VALUES ($1, $2, $3, 1, $4, $4)
ON CONFLICT (trigger_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id, trigger_type = EXCLUDED.trigger_type,
    firings = triggers.firings + 1,
    first_fired_at = least(triggers.first_fired_at, EXCLUDED.first_fired_at),
    last_fired_at = greatest(triggers.last_fired_at, EXCLUDED.last_fired_at)
"""


async def project(conn: asyncpg.Connection, ev: TriggerFired) -> None:
    """Apply one firing, unless its dedupe key already fired."""
    fresh = await conn.fetchval(_FIRING, ev.event_id, ev.trigger_id, ev.dedupe_key,
                                ev.workflow_id, ev.run_id, ev.due_at, ev.occurred_at, ev.input)
    if fresh:
        await conn.execute(_TRIGGER, ev.trigger_id, ev.workflow_id, ev.trigger_type,
                           ev.occurred_at)
