"""`bend projector run | rebuild SCHEMA | purge --older-than D | lag` (also
`python -m projections ...`)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from bend.settings import get_settings

if TYPE_CHECKING:
    from projections.purge import PurgeReport

__all__ = ["projector"]


@click.group()
def projector() -> None:
    """The read models in Postgres, projected from the log."""


@projector.command()
@click.option("--schema", default=None,
              help="Postgres schema (default BEND_DATABASE__SCHEMA_NAME).")
@click.option("--max-batch", default=1000, show_default=True, help="Records per transaction.")
def run(schema: str | None, max_batch: int) -> None:
    """Consume every projected topic and keep the read models up to date, until stopped."""
    from bend.ops.collector import freeze_startup
    from projections.ops import run_with_ops
    from projections.projector import Projector

    settings = get_settings()
    freeze_startup()  # a full collection skips the imports' objects (bend.ops.collector)
    try:  # with its ops server: /metrics, /livez, /readyz on BEND_OPS__HOST:PORT
        asyncio.run(run_with_ops(Projector(settings, schema=schema, max_batch=max_batch),
                                 settings))
    except KeyboardInterrupt:
        pass


@projector.command()
@click.argument("schema")
def rebuild(schema: str) -> None:
    """Project the whole log into the fresh SCHEMA (the live one is left alone)."""
    from projections.rebuild import rebuild as _rebuild

    report = asyncio.run(_rebuild(get_settings(), schema))
    click.echo(f"rebuilt {schema}: {report.records} records ({report.applied} applied, "
               f"{report.failed} failed; {report.archived} from the archive) in "
               f"{report.seconds:.1f} s, {report.per_second:.0f} records/s")
    for gap in report.gaps:
        click.echo(f"warning: {gap}; the rebuilt read models lack them", err=True)


@projector.command()
@click.option("--older-than", "older_than", required=True, metavar="DURATION",
              help="Purge runs that finished longer ago than this: 90d, 12h, 30m.")
@click.option("--schema", default=None,
              help="Postgres schema (default BEND_DATABASE__SCHEMA_NAME).")
def purge(older_than: str, schema: str | None) -> None:
    """Delete finished runs older than DURATION from the read models (the log and the archive
    keep them: replay and fork still work, and a rebuild brings them back)."""
    from datetime import datetime, timezone

    cutoff = datetime.now(timezone.utc) - _duration(older_than)
    report = asyncio.run(_purge(schema, cutoff))
    click.echo(f"purged {report.runs} runs finished before {cutoff:%Y-%m-%d %H:%M} UTC "
               f"({report.events} events, {report.other_rows} step, timer and usage rows) "
               f"and {report.backtests} backtests asked for before it")


def _duration(text: str) -> timedelta:
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise click.BadParameter(f"{text!r} is no duration; write a number and d, h, m or s "
                                 "(90d, 12h)", param_hint="--older-than")
    return timedelta(**{units[unit]: int(number)})


async def _purge(schema: str | None, cutoff: datetime) -> PurgeReport:
    from projections.db import connect, database_url
    from projections.purge import purge_finished_runs

    settings = get_settings()
    schema = schema or settings.database.schema_name
    conn = await connect(database_url(settings), schema)
    try:
        if await conn.fetchval("SELECT to_regclass('runs')") is None:
            raise click.ClickException(f"schema {schema} holds no read models; name the "
                                       "projector's schema with --schema")
        return await purge_finished_runs(conn, cutoff)
    finally:
        await conn.close()


@projector.command()
@click.option("--schema", default=None,
              help="Postgres schema (default BEND_DATABASE__SCHEMA_NAME).")
def lag(schema: str | None) -> None:
    """Print, as JSON, how far the read models trail each projected partition."""
    click.echo(json.dumps(asyncio.run(_lag(schema)), indent=2))


async def _lag(schema: str | None) -> dict[str, Any]:
    from bend.kafka.offsets import OffsetReader
    from projections.db import connect, database_url
    from projections.lag import projection_lag
    from projections.project import projected_topics

    settings = get_settings()
    conn = await connect(database_url(settings), schema or settings.database.schema_name)
    try:
        async with OffsetReader(settings) as offsets:
            result = await projection_lag(conn, offsets, projected_topics(settings))
    finally:
        await conn.close()
    return {"total": result.total,
            "partitions": [{"topic": p.topic, "partition": p.partition, "lag": p.lag,
                            "next_offset": p.next_offset, "end_offset": p.end_offset}
                           for p in result.partitions]}
