"""`bend dead-letters list|show|redrive`: records no processor could handle, and sending them
back to their source topic after a fix (straight on Postgres and Kafka, like `bend replay`)."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

from bend.core.errors import BendError
from bend.deadletters.service import (
    DeadLetterFilter, get_dead_letter, list_dead_letters, redrive_dead_letter,
    redrive_dead_letters,
)
from bend.kafka.producer import RecordProducer
from bend.settings import get_settings
from projections.db import connect, database_url

__all__ = ["dead_letters"]

T = TypeVar("T")


def _with_db(work: Callable[[Any, RecordProducer | None], Awaitable[T]], kafka: bool = False) -> T:
    async def go() -> T:
        settings = get_settings()
        conn = await connect(database_url(settings), settings.database.schema_name)
        try:
            if not kafka:
                return await work(conn, None)
            async with RecordProducer(settings) as producer:
                return await work(conn, producer)
        finally:
            await conn.close()
    try:
        return asyncio.run(go())
    except BendError as exc:
        raise click.ClickException(exc.message) from exc


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=value.tzinfo or timezone.utc)


def _filter(source_topic: str | None, error_type: str | None, since: datetime | None,
            until: datetime | None, redriven: bool | None = None) -> DeadLetterFilter:
    return DeadLetterFilter(source_topic, error_type, _utc(since), _utc(until), redriven)


@click.group("dead-letters")
def dead_letters() -> None:
    """Records no processor could handle: list, show, re-drive after a fix."""


_FILTERS = [
    click.option("--source-topic", default=None, help="Only those read from this topic."),
    click.option("--error-type", default=None, help="Only this error type (e.g. CorruptPayload)."),
    click.option("--since", type=click.DateTime(), default=None, help="At or after (UTC)."),
    click.option("--until", type=click.DateTime(), default=None, help="Before (UTC)."),
]


def _filters(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_FILTERS):
        command = option(command)
    return command


@dead_letters.command("list")
@_filters
@click.option("--redriven/--not-redriven", default=None, help="Only re-driven ones, or not.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_(source_topic: str | None, error_type: str | None, since: datetime | None,
          until: datetime | None, redriven: bool | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first."""
    rows = _with_db(lambda conn, _: list_dead_letters(
        conn, _filter(source_topic, error_type, since, until, redriven), limit=limit))[:limit]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        mark = f"  re-driven {r['redrive_count']}x" if r["redriven"] else ""
        click.echo(f"{r['event_id']}  {r['occurred_at']}  {r['source_topic']}:"
                   f"{r['source_partition']}:{r['source_offset']}  {r['error_type']}{mark}")
    click.echo(f"{len(rows)} dead letter(s)")


@dead_letters.command("show")
@click.argument("event_id")
def show(event_id: str) -> None:
    """One dead letter as JSON: reason, source position, headers, payload (decoded if it can)."""
    click.echo(json.dumps(_with_db(lambda conn, _: get_dead_letter(conn, event_id)), indent=2,
                          default=str))


@dead_letters.command("redrive")
@click.argument("event_ids", nargs=-1)
@click.option("--all", "all_matching", is_flag=True, help="Every one matching the filters.")
@_filters
@click.option("--force", is_flag=True, help="Also those re-driven before.")
def redrive(event_ids: tuple[str, ...], all_matching: bool, source_topic: str | None,
            error_type: str | None, since: datetime | None, until: datetime | None,
            force: bool) -> None:
    """Send EVENT_IDS (or --all matching) back to their source topic with key and headers."""
    if bool(event_ids) == all_matching:
        raise click.UsageError("name dead letters by id, or pass --all (with filters)")
    actor = f"cli:{getpass.getuser()}"

    async def work(conn: Any, producer: RecordProducer | None) -> list[Any]:
        assert producer is not None
        if len(event_ids) == 1:
            return [await redrive_dead_letter(conn, producer, event_ids[0], actor=actor,
                                              force=force)]
        return await redrive_dead_letters(
            conn, producer, event_ids=list(event_ids) or None,
            filter=_filter(source_topic, error_type, since, until), actor=actor, force=force)

    for r in _with_db(work, kafka=True):
        click.echo(f"re-drove {r.event_id} to {r.position.token}")
