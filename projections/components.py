"""Projects ComponentRegistered into `components`: the first registration of a version wins."""

from __future__ import annotations

from typing import Any

from bend.core.events import ComponentRegistered
from projections.writes import Write

__all__ = ["writes"]

# Versions are immutable: a later registration of the same name@version (another API process,
# a redelivery, the installed components registered again at start) changes nothing.
_REGISTER = """
INSERT INTO components (tenant, name, version, description, tags, input_schema, output_schema,
                        project, registered_by, registered_at, event_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (tenant, name, version) DO NOTHING
"""


def _tags(value: Any) -> list[str]:
    return [str(t) for t in value] if isinstance(value, list) else []


def writes(ev: ComponentRegistered) -> list[Write]:
    """The row of one component version."""
    return [Write(("component", ev.tenant, ev.name, ev.version), _REGISTER,
                  (ev.tenant, ev.name, ev.version, ev.description, _tags(ev.tags),
                   ev.input_schema if isinstance(ev.input_schema, dict) else {"type": "object"},
                   ev.output_schema if isinstance(ev.output_schema, dict) else None,
                   ev.project, ev.actor or "unknown", ev.occurred_at, ev.event_id))]
