"""Projects DeadLettered into `dead_letters`."""

from __future__ import annotations

from bend.core.events import DeadLettered
from projections.writes import Write

__all__ = ["writes"]

_INSERT = """
INSERT INTO dead_letters (event_id, source_topic, source_partition, source_offset, error_type,
                          reason, key, payload, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (event_id) DO NOTHING
"""


def writes(ev: DeadLettered) -> list[Write]:
    """Keep the dead letter whole."""
    return [Write(("dead_letter", ev.event_id), _INSERT,
                  (ev.event_id, ev.source_topic, ev.source_partition, ev.source_offset,
                   ev.error_type, ev.reason, ev.key, ev.payload, ev.occurred_at))]
