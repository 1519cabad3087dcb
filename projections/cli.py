"""`bend projector run | rebuild SCHEMA | lag` (also `python -m projections ...`)."""

from __future__ import annotations

import asyncio
import json

import click

from bend.settings import get_settings

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
    from projections.ops import run_with_ops
    from projections.projector import Projector

    settings = get_settings()
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
               f"{report.failed} failed) in {report.seconds:.1f} s, "
               f"{report.per_second:.0f} records/s")


@projector.command()
@click.option("--schema", default=None,
              help="Postgres schema (default BEND_DATABASE__SCHEMA_NAME).")
def lag(schema: str | None) -> None:
    """Print, as JSON, how far the read models trail each projected partition."""
    click.echo(json.dumps(asyncio.run(_lag(schema)), indent=2))


async def _lag(schema: str | None) -> dict:
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
