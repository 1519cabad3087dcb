"""Projects trigger events into `triggers` (definition, enabled, firing and error state),
TriggerFired into `trigger_firings` (one per dedupe key) and `audit`, and TriggerFailed into
`trigger_errors`."""

from __future__ import annotations

from typing import Any

from bend.core.events import (
    Event, TriggerFailed, TriggerFired, TriggerRegistered, TriggerRemoved, TriggerUpdated,
)
from projections.audit import COLUMNS, row_args
from projections.writes import Write

__all__ = ["webhook_path", "writes"]

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
                      last_fired_at, last_due_at, tenant, project)
SELECT $2, $4, $9, 1, $7, $7, $6, $17, $18 WHERE EXISTS (SELECT 1 FROM firing)
ON CONFLICT (trigger_id) DO UPDATE SET
    firings = triggers.firings + 1,
    first_fired_at = least(triggers.first_fired_at, EXCLUDED.first_fired_at),
    last_fired_at = greatest(triggers.last_fired_at, EXCLUDED.last_fired_at),
    last_due_at = greatest(triggers.last_due_at, EXCLUDED.last_due_at)
"""

# A failure read twice (one event id) counts once; the latest failure is the last error, as
# `<stage>: <error>` (the way bend.core.triggers.apply folds it).
_FAILED = """
WITH failure AS (
    INSERT INTO trigger_errors (event_id, trigger_id, stage, error, source, failed_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
INSERT INTO triggers (trigger_id, workflow_id, trigger_type, tenant, project, error_count,
                      last_error, last_error_at, last_error_stage)
SELECT $2, $7, $8, $9, $10, 1, $11, $6, $3 WHERE EXISTS (SELECT 1 FROM failure)
ON CONFLICT (trigger_id) DO UPDATE SET
    error_count = triggers.error_count + 1,
    last_error = CASE WHEN triggers.last_error_at IS NULL
                        OR EXCLUDED.last_error_at >= triggers.last_error_at
                      THEN EXCLUDED.last_error ELSE triggers.last_error END,
    last_error_stage = CASE WHEN triggers.last_error_at IS NULL
                              OR EXCLUDED.last_error_at >= triggers.last_error_at
                            THEN EXCLUDED.last_error_stage ELSE triggers.last_error_stage END,
    last_error_at = greatest(triggers.last_error_at, EXCLUDED.last_error_at)
"""

# A row a firing made before the registration was read takes the definition; a registration
# read again (a rebuild) never undoes later updates or a removal.
_REGISTERED = """
INSERT INTO triggers (trigger_id, workflow_id, trigger_type, definition, enabled, tenant, project,
                      webhook_path, registered_at, updated_at)
VALUES ($1, $2, $3, $4, true, $5, $6, $7, $8, $8)
ON CONFLICT (trigger_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id, trigger_type = EXCLUDED.trigger_type,
    definition = EXCLUDED.definition, tenant = EXCLUDED.tenant, project = EXCLUDED.project,
    webhook_path = EXCLUDED.webhook_path, registered_at = EXCLUDED.registered_at,
    updated_at = EXCLUDED.updated_at
WHERE triggers.registered_at IS NULL
"""

# Removed is final: a late update does not revive a trigger.
_UPDATED = """
UPDATE triggers SET trigger_type = coalesce($2, trigger_type), definition = $3, enabled = $4,
       webhook_path = $5, updated_at = $6
WHERE trigger_id = $1 AND removed_at IS NULL
"""

_REMOVED = """
UPDATE triggers SET enabled = false, removed_at = $2, updated_at = $2
WHERE trigger_id = $1 AND removed_at IS NULL
"""


def webhook_path(definition: Any) -> str | None:
    """The path a webhook trigger's definition listens on (None for other types)."""
    if isinstance(definition, dict) and definition.get("type") == "webhook":
        path = definition.get("path")
        return path if isinstance(path, str) else None
    return None


def _type(definition: Any) -> str | None:
    kind = definition.get("type") if isinstance(definition, dict) else None
    return kind if isinstance(kind, str) else None


def writes(ev: Event) -> list[Write]:
    """The writes one trigger event makes (a firing only unless its dedupe key already fired)."""
    lane = ("trigger", getattr(ev, "trigger_id", ""))
    match ev:
        case TriggerFired():
            audit = row_args(ev)
            assert audit is not None  # TriggerFired is audited
            return [Write(lane, _FIRED,
                          (ev.event_id, ev.trigger_id, ev.dedupe_key, ev.workflow_id, ev.run_id,
                           ev.due_at, ev.occurred_at, ev.input, ev.trigger_type, *audit))]
        case TriggerFailed():
            return [Write(lane, _FAILED,
                          (ev.event_id, ev.trigger_id, ev.stage, ev.error, ev.source,
                           ev.occurred_at, ev.workflow_id, ev.trigger_type, ev.tenant,
                           ev.project, f"{ev.stage}: {ev.error}"))]
        case TriggerRegistered():
            return [Write(lane, _REGISTERED,
                          (ev.trigger_id, ev.workflow_id, ev.trigger_type, ev.definition,
                           ev.tenant, ev.project, webhook_path(ev.definition), ev.occurred_at))]
        case TriggerUpdated():
            return [Write(lane, _UPDATED,
                          (ev.trigger_id, _type(ev.definition), ev.definition, ev.enabled,
                           webhook_path(ev.definition), ev.occurred_at))]
        case TriggerRemoved():
            return [Write(lane, _REMOVED, (ev.trigger_id, ev.occurred_at))]
    return []
