"""Reads of `dead_letters`: listed newest first, one whole, those to re-drive; each within a
`DeadLetterScope` (those of a project's runs, found by joining `runs` on the record's key) or
none (all), and matching a `DeadLetterFilter`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from bend.contracts.topics import topic_name
from bend.settings import Settings

__all__ = [
    "DeadLetterFilter", "DeadLetterScope", "MAX_REDRIVE", "SUMMARY_COLUMNS", "get_row",
    "list_rows", "rows_matching", "rows_named",
]

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
MAX_REDRIVE = 1000
# Topics whose record key is the run id (bend.contracts.topics.key_for): their dead letters
# belong to that run, and so to its project. Timers are keyed `<run_id>:<purpose>...`.
RUN_KEYED_KINDS = ("runs", "commands", "tasks")
TIMER_KIND = "timers"


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters: by source topic, error type, time, and whether re-driven."""

    source_topic: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    redriven: bool | None = None

    def where(self, first: int = 1) -> tuple[str, list[Any]]:
        """SQL conditions (AND-ed) and their arguments, numbered from `first`."""
        parts, args = [], []
        for cond, value in (("d.source_topic = ${}", self.source_topic),
                            ("d.error_type = ${}", self.error_type),
                            ("d.occurred_at >= ${}", self.since),
                            ("d.occurred_at < ${}", self.until)):
            if value is not None:
                args.append(value)
                parts.append(cond.format(first + len(args) - 1))
        if self.redriven is not None:
            parts.append("d.redriven_at IS NOT NULL" if self.redriven else "d.redriven_at IS NULL")
        return (" AND ".join(parts) or "true"), args


@dataclass(frozen=True, slots=True)
class DeadLetterScope:
    """The dead letters a caller may see: those of `project`'s runs, plus those of no known run
    when `unowned` (admins)."""

    project: str
    run_topics: tuple[str, ...]
    timer_topic: str | None = None
    unowned: bool = False

    @classmethod
    def of(cls, settings: Settings, project: str, *, admin: bool) -> DeadLetterScope:
        """The scope of a caller of `project` (an admin also sees dead letters of no run)."""
        return cls(project, tuple(topic_name(k, settings) for k in RUN_KEYED_KINDS),
                   topic_name(TIMER_KIND, settings), admin)

    def where(self, first: int = 1) -> tuple[str, list[Any]]:
        """SQL condition on `d` (dead_letters) LEFT JOIN `owner` (runs), numbered from `first`."""
        cond = f"owner.project = ${first}"
        if self.unowned:
            cond = f"({cond} OR owner.run_id IS NULL)"
        return cond, [self.project]

    def join(self, first: int) -> tuple[str, list[Any]]:
        """The LEFT JOIN finding each dead letter's run (keys are ASCII run ids; `escape`
        turns any other byte into a backslash sequence no run id holds)."""
        return ("LEFT JOIN runs owner ON owner.run_id = CASE "
                f"WHEN d.source_topic = ANY(${first}::text[]) THEN encode(d.key, 'escape') "
                f"WHEN d.source_topic = ${first + 1} THEN split_part(encode(d.key, 'escape'), "
                "':', 1) END"), [list(self.run_topics), self.timer_topic]


def _scoped(scope: DeadLetterScope | None, where: str, args: list[Any]) -> tuple[str, str,
                                                                                  list[Any]]:
    """(FROM clause, WHERE clause, arguments) of dead letters matching `where` in `scope`."""
    if scope is None:
        return "dead_letters d", where, args
    join, join_args = scope.join(len(args) + 1)
    cond, cond_args = scope.where(len(args) + len(join_args) + 1)
    return f"dead_letters d {join}", f"({where}) AND {cond}", [*args, *join_args, *cond_args]


_SUMMARY = ", ".join(f"d.{c}" for c in (
    "event_id", "source_topic", "source_partition", "source_offset", "error_type", "reason",
    "occurred_at", "redriven_at", "redriven_by", "redrive_count", "redriven_to"))


SUMMARY_COLUMNS = tuple(c.removeprefix("d.") for c in _SUMMARY.split(", "))


async def list_rows(db: Db, filter: DeadLetterFilter | None = None, *, limit: int = 50,
                    before: tuple[datetime, str] | None = None,
                    scope: DeadLetterScope | None = None) -> list[Any]:
    """The summary columns of dead letters matching `filter` in `scope`, newest first (`limit`
    + 1 rows); `before`: the (occurred_at, event_id) of the previous page's last row."""
    where, args = (filter or DeadLetterFilter()).where()
    if before is not None:
        args += [before[0], before[1]]
        where += f" AND (d.occurred_at, d.event_id) < (${len(args) - 1}, ${len(args)})"
    source, where, args = _scoped(scope, where, args)
    rows: list[Any] = await db.fetch(f"SELECT {_SUMMARY} FROM {source} WHERE {where} "
                                     f"ORDER BY d.occurred_at DESC, d.event_id DESC "
                                     f"LIMIT {int(limit) + 1}", *args)
    return rows


async def get_row(db: Db, event_id: str, scope: DeadLetterScope | None) -> Any:
    """The whole row of dead letter `event_id` if `scope` holds it, else None."""
    source, where, args = _scoped(scope, "d.event_id = $1", [event_id])
    return await db.fetchrow(f"SELECT d.* FROM {source} WHERE {where}", *args)


async def rows_named(db: Db, event_ids: list[str], scope: DeadLetterScope | None) -> list[Any]:
    """The whole rows of the named dead letters `scope` holds, oldest first."""
    source, where, args = _scoped(scope, "d.event_id = ANY($1::text[])", [event_ids])
    rows: list[Any] = await db.fetch(f"SELECT d.* FROM {source} WHERE {where} "
                                     "ORDER BY d.occurred_at, d.event_id", *args)
    return rows


async def rows_matching(db: Db, filter: DeadLetterFilter, scope: DeadLetterScope | None, *,
                        limit: int = MAX_REDRIVE) -> list[Any]:
    """The whole rows of the dead letters matching `filter` in `scope`, oldest first."""
    source, where, args = _scoped(scope, *filter.where())
    rows: list[Any] = await db.fetch(f"SELECT d.* FROM {source} WHERE {where} "
                                     f"ORDER BY d.occurred_at, d.event_id LIMIT {int(limit)}",
                                     *args)
    return rows
