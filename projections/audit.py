"""Projects who-did-what into `audit`, with the rows `bend.security.audit.audit_row` gives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from bend.core.events import Event
from bend.security.audit import AUDITED, audit_row
from projections.writes import Write

__all__ = ["AUDITED", "COLUMNS", "gate", "row_args", "writes"]

COLUMNS = ("event_id, occurred_at, actor, action, workflow_id, workflow_version, run_id, "
           "tenant, project, detail")

_INSERT = f"""
INSERT INTO audit ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (event_id) DO NOTHING
"""

_GATE = f"""
INSERT INTO audit ({COLUMNS})
SELECT event_id, occurred_at, actor, action, workflow_id, workflow_version, run_id, tenant,
       project, detail::jsonb
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::integer[],
            $7::text[], $8::text[], $9::text[], $10::text[]) WITH ORDINALITY
     AS u (event_id, occurred_at, actor, action, workflow_id, workflow_version, run_id, tenant,
           project, detail, ord)
ORDER BY ord
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def row_args(ev: Event) -> tuple[Any, ...] | None:
    """The audit columns' values for `ev`, in COLUMNS order; None if it is not audited."""
    row = audit_row(ev)
    if row is None:
        return None
    r = row.as_row()
    return (r["event_id"], r["occurred_at"], r["actor"], r["action"], r["workflow_id"],
            r["workflow_version"], r["run_id"], r["tenant"], r["project"], r["detail"])


async def gate(conn: asyncpg.Connection, events: Sequence[Event]) -> set[str]:
    """Record audited events; the ids of those not recorded before (the rest are redeliveries)."""
    rows = [args for ev in events if (args := row_args(ev)) is not None]
    if not rows:
        return set()
    columns = [list(c) for c in zip(*rows, strict=False)]
    columns[9] = [json.dumps(d, separators=(",", ":")) for d in columns[9]]
    return {r["event_id"] for r in await conn.fetch(_GATE, *columns)}


def writes(ev: Event) -> list[Write]:
    """The audit row of `ev`, if it is audited."""
    args = row_args(ev)
    return [] if args is None else [Write(("audit", ev.event_id), _INSERT, args)]
