"""The dead-letter service: the `dead_letters` read model listed and shown, records re-driven.

A re-drive sends the record's bytes back to its source topic and partition with its original
key and headers, then records `DeadLetterRedriven`, which the projector folds onto the row
(when, by whom, where to). A dead letter already re-driven is refused unless forced.

API callers see a dead letter through a `DeadLetterScope`: those of their project's runs (a
record of a run-keyed topic whose key names a run of the project), and, for admins, those of no
known run; any other is unknown to them (404), never listed and never re-driven. Trusted
callers (the CLI, with database access) pass no scope and see them all. The SQL is
projections.queries.dead_letters'.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeAlias

import asyncpg

from bend.contracts.codec import decode
from bend.core.errors import BendError
from bend.core.events import DeadLetterRedriven
from bend.kafka.position import Position
from bend.kafka.producer import RecordProducer
from projections.payload import payload_of
from projections.queries import dead_letters as queries
from projections.queries.dead_letters import MAX_REDRIVE, DeadLetterFilter, DeadLetterScope

__all__ = [
    "AlreadyRedriven", "DeadLetterFilter", "DeadLetterScope", "MAX_REDRIVE", "Redriven",
    "UnknownDeadLetter", "get_dead_letter", "list_dead_letters", "redrive_dead_letter",
    "redrive_dead_letters",
]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection


class UnknownDeadLetter(BendError):
    """No dead letter has this event id."""

    status = 404

    def __init__(self, event_id: str) -> None:
        super().__init__(f"no dead letter {event_id}; list them with `bend dead-letters list`")
        self.event_id = event_id


class AlreadyRedriven(BendError):
    """The dead letter was re-driven before; re-driving it again needs force."""

    status = 409

    def __init__(self, event_id: str, at: datetime, by: str | None) -> None:
        super().__init__(f"dead letter {event_id} was re-driven at {at.isoformat()} by "
                         f"{by or 'unknown'}; pass force to send it again")
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class Redriven:
    """One dead letter sent back: where its copy landed, and the event that records it."""

    event_id: str
    position: Position
    redrive_event_id: str
    redrive_position: Position
    forced: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"event_id": self.event_id, "redriven_to": self.position.token,
                "redrive_event_id": self.redrive_event_id,
                "position": self.redrive_position.token, "forced": self.forced}


def _summary(row: Any) -> dict[str, Any]:
    out = dict(row)
    for k in ("occurred_at", "redriven_at"):
        out[k] = out[k].isoformat() if out[k] is not None else None
    out["redriven"] = out["redriven_at"] is not None
    return out


async def list_dead_letters(db: Db, filter: DeadLetterFilter | None = None, *, limit: int = 50,
                            before: tuple[datetime, str] | None = None,
                            scope: DeadLetterScope | None = None) -> list[dict[str, Any]]:
    """Dead letters matching `filter` in `scope` (None: all), newest first (`limit` + 1 rows,
    for paging); `before`: the (occurred_at, event_id) of the previous page's last row."""
    rows = await queries.list_rows(db, filter, limit=limit, before=before, scope=scope)
    return [_summary(r) for r in rows]


async def _row(db: Db, event_id: str, scope: DeadLetterScope | None) -> Any:
    """The whole row of dead letter `event_id` if `scope` holds it (UnknownDeadLetter if not)."""
    row = await queries.get_row(db, event_id, scope)
    if row is None:
        raise UnknownDeadLetter(event_id)
    return row


async def get_dead_letter(db: Db, event_id: str, *,
                          scope: DeadLetterScope | None = None) -> dict[str, Any]:
    """One dead letter whole: reason, error type, source position, key, headers, and the
    payload decoded when it decodes (else `payload_base64` and why it does not)."""
    row = await _row(db, event_id, scope)
    out = _summary({k: row[k] for k in queries.SUMMARY_COLUMNS})
    key, payload = row["key"], bytes(row["payload"])
    out["source_position"] = (f"{row['source_topic']}:{row['source_partition']}:"
                              f"{row['source_offset']}")
    out["key"] = None if key is None else bytes(key).decode(errors="replace")
    out["headers"] = row["headers"] or []
    out["payload_base64"] = base64.b64encode(payload).decode()
    try:
        record = decode(payload)
        out["payload_type"] = type(record).__name__
        out["payload"] = payload_of(record)
        out["decode_error"] = None
    except BendError as exc:
        out["payload_type"], out["payload"], out["decode_error"] = None, None, exc.message
    return out


async def redrive_dead_letter(db: Db, producer: RecordProducer, event_id: str, *, actor: str,
                              force: bool = False,
                              scope: DeadLetterScope | None = None) -> Redriven:
    """Send one dead letter's record back to its source and record it (AlreadyRedriven if it
    was re-driven before and not `force`; UnknownDeadLetter if `scope` does not hold it)."""
    return await _redrive(producer, await _row(db, event_id, scope), actor, force)


async def redrive_dead_letters(db: Db, producer: RecordProducer, *,
                               event_ids: list[str] | None = None,
                               filter: DeadLetterFilter | None = None, actor: str,
                               force: bool = False,
                               scope: DeadLetterScope | None = None) -> list[Redriven]:
    """Re-drive the named dead letters, or every one matching `filter` (at most 1000 a call;
    without force, only those never re-driven), oldest first; only those `scope` holds (a named
    one it does not hold is UnknownDeadLetter, and nothing is re-driven)."""
    if event_ids is not None:
        rows = await queries.rows_named(db, event_ids, scope)
        missing = set(event_ids) - {r["event_id"] for r in rows}
        if missing:
            raise UnknownDeadLetter(sorted(missing)[0])
        if not force:
            done = next((r for r in rows if r["redriven_at"] is not None), None)
            if done is not None:
                raise AlreadyRedriven(done["event_id"], done["redriven_at"], done["redriven_by"])
    else:
        f = filter or DeadLetterFilter()
        if not force:
            f = DeadLetterFilter(f.source_topic, f.error_type, f.since, f.until, redriven=False)
        rows = await queries.rows_matching(db, f, scope)
    return [await _redrive(producer, row, actor, force) for row in rows]


async def _redrive(producer: RecordProducer, row: Any, actor: str, force: bool) -> Redriven:
    if row["redriven_at"] is not None and not force:
        raise AlreadyRedriven(row["event_id"], row["redriven_at"], row["redriven_by"])
    headers = [(h["key"], base64.b64decode(h["value"]) if h.get("value") is not None else b"")
               for h in (row["headers"] or [])]
    landed = await producer.send_raw(row["source_topic"], bytes(row["payload"]),
                                     key=None if row["key"] is None else bytes(row["key"]),
                                     headers=headers, partition=row["source_partition"])
    event = DeadLetterRedriven(
        event_id=str(uuid.uuid4()), workflow_id="", occurred_at=datetime.now(timezone.utc),
        dead_letter_id=row["event_id"], target_topic=landed.topic,
        target_partition=landed.partition, target_offset=landed.offset, actor=actor,
        forced=row["redriven_at"] is not None,
        # Keyed as its DeadLettered was (`key or b""`): the mark lands on the same partition,
        # after the dead letter, for every reader of the log.
        source_key=b"" if row["key"] is None else bytes(row["key"]),
    )
    recorded = await producer.send(event)
    return Redriven(row["event_id"], landed, event.event_id, recorded, event.forced)
