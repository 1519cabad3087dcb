"""Projects DeadLettered into `dead_letters`, and DeadLetterRedriven onto its row."""

from __future__ import annotations

from bend.core.events import DeadLettered, DeadLetterRedriven
from projections.writes import Write

__all__ = ["writes"]

_INSERT = """
INSERT INTO dead_letters (event_id, source_topic, source_partition, source_offset, error_type,
                          reason, key, payload, occurred_at, headers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (event_id) DO NOTHING
"""

# A copy of a re-drive event already applied (same time) does not count again.
_REDRIVEN = """
UPDATE dead_letters SET redriven_at = $2, redriven_by = $3, redrive_count = redrive_count + 1,
                        redriven_to = $4
WHERE event_id = $1 AND (redriven_at IS NULL OR redriven_at < $2)
"""


def writes(ev: DeadLettered | DeadLetterRedriven) -> list[Write]:
    """Keep the dead letter whole; mark it re-driven."""
    match ev:
        case DeadLettered():
            return [Write(("dead_letter", ev.event_id), _INSERT,
                          (ev.event_id, ev.source_topic, ev.source_partition, ev.source_offset,
                           ev.error_type, ev.reason, ev.key, ev.payload, ev.occurred_at,
                           ev.headers))]
        case DeadLetterRedriven():
            to = f"{ev.target_topic}:{ev.target_partition}:{ev.target_offset}"
            return [Write(("dead_letter", ev.dead_letter_id), _REDRIVEN,
                          (ev.dead_letter_id, ev.occurred_at, ev.actor, to))]
    return []
