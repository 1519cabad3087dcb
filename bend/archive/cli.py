"""`bend archive run | status` (also `python -m bend.archive ...`)."""

from __future__ import annotations

import asyncio
import json

import click

from bend.settings import get_settings
import contextlib

__all__ = ["archive"]


@click.group()
def archive() -> None:
    """The archive of the logs Kafka expires (run log, commands, dead letters)."""


@archive.command()
def run() -> None:
    """Archive every record of the archived topics into segment files, until stopped."""
    from bend.archive.archiver import Archiver
    from bend.archive.ops import run_with_ops

    settings = get_settings()
    # With its ops server: /metrics, /livez, /readyz on BEND_OPS__HOST:PORT.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_with_ops(Archiver(settings), settings))


@archive.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Per partition: how far the archive reaches, what the log still holds, and any gap."""
    from bend.archive.status import archive_status

    settings = get_settings()
    rows = asyncio.run(archive_status(settings))
    if as_json:
        click.echo(json.dumps([{"topic": r.topic, "partition": r.partition,
                                "archived_to": r.archived_to, "segments": r.segments,
                                "log_begins": r.log_begins, "log_ends": r.log_ends,
                                "behind": r.behind, "gap": str(r.gap) if r.gap else None}
                               for r in rows], indent=2))
        return
    click.echo(f"archive in {settings.archive_dir()}")
    for r in rows:
        reach = "nothing yet" if r.archived_to is None else f"to {r.archived_to}"
        line = (f"{r.topic}:{r.partition}  archived {reach} ({r.segments} segments), log "
                f"{r.log_begins}-{r.log_ends}, {r.behind} behind")
        click.echo(line + (f"  GAP: {r.gap}" if r.gap else ""))
