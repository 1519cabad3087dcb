"""Compare a rebuilt schema with the live one table by table, and switch it in atomically.

The switch renames schemas (or, for one projection, moves its tables) in ONE transaction that
holds the live schema's batch lock exclusively (`checkpoint.BATCH_LOCK_KEY`): no projector
batch is in flight while it runs, and every batch after it resolves its tables by name in the
new schema. Connections keep their `search_path` (a schema name), so the API and a running
projector read and write the new tables from their next statement on, without restarting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from projections.checkpoint import BATCH_LOCK_KEY
from projections.db import check_schema
from projections.errors import ProjectionError

__all__ = [
    "PROJECTIONS", "TableDifference", "UnknownProjection", "compare", "hold_batches", "offsets",
    "switch_schema", "switch_tables", "tables_of",
]

# Each projection (a module of projections/) and the tables it alone writes.
PROJECTIONS: Mapping[str, tuple[str, ...]] = {
    "workflows": ("workflows", "workflow_versions"),
    "runs": ("runs", "run_events"),
    "steps": ("steps", "step_attempts"),
    "timers": ("timers",),
    "triggers": ("triggers", "trigger_firings", "trigger_errors"),
    "dead_letters": ("dead_letters",),
    "llm_usage": ("llm_usage",),
    "audit": ("audit",),
    "components": ("components",),
    "backtests": ("backtests", "backtest_runs"),
}

Offsets = dict[tuple[str, int], int]


class UnknownProjection(ProjectionError):
    """`--only` named no projection."""

    status = 422

    def __init__(self, name: str) -> None:
        super().__init__(f"no projection is named {name!r}; choose one of "
                         f"{', '.join(sorted(PROJECTIONS))}")
        self.name = name


@dataclass(frozen=True, slots=True)
class TableDifference:
    """One table that differs: its row counts, the rows only in each, a few of them."""

    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: int
    only_rebuilt: int
    samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"table": self.table, "live_rows": self.live_rows,
                "rebuilt_rows": self.rebuilt_rows, "only_live": self.only_live,
                "only_rebuilt": self.only_rebuilt, "samples": self.samples}


async def tables_of(conn: asyncpg.Connection, schema: str, only: str | None) -> tuple[str, ...]:
    """The tables a switch of projection `only` compares and moves; None: every table of
    `schema` but its migration record."""
    if only is not None and only not in PROJECTIONS:
        raise UnknownProjection(only)
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1 "
                            "AND tablename NOT IN ('schema_migrations', "
                            "'notification_deliveries') ORDER BY tablename",
                            check_schema(schema))
    present = [check_schema(r["tablename"]) for r in rows]
    return tuple(present) if only is None else tuple(t for t in PROJECTIONS[only] if t in present)


async def hold_batches(conn: asyncpg.Connection, schema: str) -> None:
    """Inside a transaction: wait for `schema`'s projector batches in flight, block new ones."""
    await conn.execute(f"SELECT pg_advisory_xact_lock({BATCH_LOCK_KEY.format(schema='$1::text')})",
                       check_schema(schema))


async def offsets(conn: asyncpg.Connection, schema: str) -> Offsets:
    """Every partition's next offset stored in `schema` (those that applied something)."""
    rows = await conn.fetch(f"SELECT topic, partition, next_offset FROM {check_schema(schema)}"
                            ".projection_offsets WHERE next_offset >= 0")
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def compare(conn: asyncpg.Connection, live: str, rebuilt: str,
                  tables: Sequence[str], samples: int = 3) -> list[TableDifference]:
    """Every table of `tables` whose rows differ between the two schemas (as multisets)."""
    check_schema(live), check_schema(rebuilt)
    out = []
    for table in tables:
        a, b = f"{live}.{table}", f"{rebuilt}.{table}"
        row = await conn.fetchrow(
            f"SELECT (SELECT count(*) FROM {a}) AS live_rows, "
            f"(SELECT count(*) FROM {b}) AS rebuilt_rows, "
            f"(SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x)"
            " AS only_live, "
            f"(SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y)"
            " AS only_rebuilt")
        if row["only_live"] or row["only_rebuilt"]:
            shown = await conn.fetch(
                f"(SELECT 'live: ' || left(row_to_json(x)::text, 300) AS r FROM "
                f"(SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x LIMIT {samples}) UNION ALL "
                f"(SELECT 'rebuilt: ' || left(row_to_json(y)::text, 300) FROM "
                f"(SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y LIMIT {samples})")
            out.append(TableDifference(table, row["live_rows"], row["rebuilt_rows"],
                                       row["only_live"], row["only_rebuilt"],
                                       [r["r"] for r in shown]))
    return out


async def switch_schema(conn: asyncpg.Connection, live: str, rebuilt: str, retired: str) -> None:
    """Inside the transaction holding the batch lock: `live` becomes `retired`, `rebuilt`
    becomes `live`."""
    for name in (live, rebuilt, retired):
        check_schema(name)
    await conn.execute(f"ALTER SCHEMA {live} RENAME TO {retired}")
    await conn.execute(f"ALTER SCHEMA {rebuilt} RENAME TO {live}")


async def switch_tables(conn: asyncpg.Connection, live: str, rebuilt: str, retired: str,
                        tables: Sequence[str]) -> None:
    """Inside the transaction holding the batch lock: `tables` of `live` move to `retired`,
    those of `rebuilt` take their place (indexes and constraints move with them)."""
    for name in (live, rebuilt, retired):
        check_schema(name)
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {retired}")
    for table in tables:
        await conn.execute(f"ALTER TABLE {live}.{table} SET SCHEMA {retired}")
        await conn.execute(f"ALTER TABLE {rebuilt}.{table} SET SCHEMA {live}")
