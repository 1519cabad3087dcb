"""`bend replay projections|status`: rebuild the read model from the log and switch it in, and
read any rebuild's status. The CLI's rebuild is recorded in `projection_rebuilds` like the API's
(claimed, beaten, ended), so only one rebuild runs at a time wherever it was started, and
`GET /api/replay/projections/{rebuild_id}` on any replica reports it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import click

from bend.core.errors import BendError
from bend.ops.taskdump import install_task_dump
from bend.replay.projections import (
    RebuildAbandoned, RebuildInProgress, RebuildRecorder, RebuildRefused, RebuildStatus,
    new_status, rebuild_projections,
)
from bend.settings import Settings, get_settings
from projections.db import create_pool, database_url
from projections.migrate import migrate
from projections.queries import schemas

__all__ = ["projections", "status"]

RUNNING_ELSEWHERE = 2  # exit code: another rebuild holds the read model
_CLOSE_S = 5.0  # how long closing the pool may take before its connections are cut


class _Refused(click.ClickException):
    """Another rebuild runs: nothing was started."""

    exit_code = RUNNING_ELSEWHERE


@asynccontextmanager
async def _recorder(settings: Settings, *, migrated: bool) -> AsyncIterator[
        RebuildRecorder | None]:
    """A recorder over the live read-model schema; None when that schema does not exist (no API
    or projector ever served it, so no other rebuild can be recorded there).

    With `migrated`, the schema is first brought to the latest migration (as the API does when
    it starts), so an older schema gets its `projection_rebuilds` table.
    """
    schema = settings.database.schema_name
    pool = await create_pool(database_url(settings), schema, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            recorded = await schemas.schema_exists(conn, schema)
            if recorded and migrated:
                await migrate(conn, schema)
            elif recorded:
                recorded = await schemas.has_table(conn, "projection_rebuilds")
        yield RebuildRecorder.of(pool, settings) if recorded else None
    finally:
        try:  # a connection a cancelled query left busy must not hold the exit up
            await asyncio.wait_for(pool.close(), _CLOSE_S)
        except TimeoutError:
            pool.terminate()


async def _claim(recorder: RebuildRecorder, status: RebuildStatus) -> None:
    """Record `status` as the running rebuild, or refuse naming the one that runs."""
    try:
        await recorder.claim(status)
    except RebuildInProgress as exc:
        running = await recorder.read(exc.rebuild_id) or {}
        rid = exc.rebuild_id
        raise _Refused(
            f"rebuild {rid} of schema {status.live} is already running "
            f"(owner {running.get('owner', '?')}, phase {running.get('phase', '?')}, "
            f"started {running.get('started_at', '?')}, last heartbeat "
            f"{running.get('heartbeat_at', '?')}); one rebuild runs at a time: wait for it to "
            f"end (`bend replay status {rid}` or GET /api/replay/projections/{rid}) and start "
            "again") from None


async def _rebuild(settings: Settings, status: RebuildStatus, *, accept_differences: bool,
                   drop_retired: bool, settle_s: float) -> dict[str, Any] | None:
    """Claim, run and record the rebuild; the recorded status when it was abandoned."""
    install_task_dump()  # kill -USR1 shows what it waits on
    async with _recorder(settings, migrated=True) as recorder:
        what = status.only or "every projection"
        started = (f"rebuild {status.rebuild_id} ({status.owner}): {what} of schema "
                   f"{status.live} into {status.rebuilt}")
        if recorder is None:
            click.echo(f"{started}; schema {status.live} does not exist yet: this rebuild "
                       "creates it and is not recorded (nothing serves that schema)", err=True)
        else:
            await _claim(recorder, status)
            click.echo(f"{started}; follow it with `bend replay status {status.rebuild_id}` or "
                       f"GET /api/replay/projections/{status.rebuild_id}", err=True)
        try:
            await rebuild_projections(settings, status, recorder=recorder,
                                      accept_differences=accept_differences,
                                      drop_retired=drop_retired, settle_s=settle_s)
        except RebuildRefused:
            pass  # the status says why; exit 1
        except RebuildAbandoned:
            return None if recorder is None else await recorder.read(status.rebuild_id)
    return None


@click.command("projections")
@click.option("--only", default=None, help="Rebuild and switch one projection's tables "
              "(runs, steps, workflows, timers, triggers, dead_letters, llm_usage, audit, "
              "components); default: the whole read model.")
@click.option("--accept-differences", is_flag=True,
              help="Switch even if the rebuilt tables differ from the live ones.")
@click.option("--drop-retired", is_flag=True,
              help="Drop the replaced schema (or tables) after the switch.")
@click.option("--settle", "settle_s", default=10.0, show_default=True,
              help="Seconds to let a running projector reach what the rebuild read.")
@click.option("--json", "as_json", is_flag=True)
def projections(only: str | None, accept_differences: bool, drop_retired: bool,
                settle_s: float, as_json: bool) -> None:
    """Rebuild the read model from the log's start beside the live one, compare them table by
    table, then switch atomically (the API and the projector keep running).

    Exit 1 if it was not switched, 2 if another rebuild is running (from the CLI or the API).
    """
    settings = get_settings()
    try:
        status_ = new_status(settings, only)
        abandoned = asyncio.run(_rebuild(settings, status_, accept_differences=accept_differences,
                                         drop_retired=drop_retired, settle_s=settle_s))
    except BendError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps({**status_.as_dict(), **({"abandoned": abandoned["abandoned"]}
                                                       if abandoned else {})}, indent=2))
    else:
        _print_rebuild(status_)
        if abandoned and abandoned.get("abandoned"):
            click.echo(f"what to do: {abandoned['abandoned']}")
    if status_.phase != "switched":
        raise SystemExit(1)


def _print_rebuild(status: RebuildStatus) -> None:
    click.echo(f"rebuild {status.rebuild_id}: read {status.records} records in "
               f"{status.rebuild_seconds:.2f} s ({status.per_second:.0f} events/s)")
    if status.compared:
        click.echo(f"compared {len(status.tables)} tables at the same offsets: "
                   + ("identical" if not status.differences else
                      f"{len(status.differences)} differ"))
    elif status.note:
        click.echo(status.note)
    for d in status.differences:
        click.echo(f"  - {d.table}: live {d.live_rows} rows, rebuilt {d.rebuilt_rows}; "
                   f"{d.only_live} only live, {d.only_rebuilt} only rebuilt")
        for sample in d.samples:
            click.echo(f"      {sample}")
    if status.phase == "switched":
        kept = f"; the old one is kept as {status.retired}" if status.retired else ""
        click.echo(f"switched in {status.switch_ms:.0f} ms{kept}")
    else:
        click.echo(f"{status.phase}: {status.error}")


async def _read(settings: Settings, rebuild_id: str) -> dict[str, Any] | None:
    async with _recorder(settings, migrated=False) as recorder:
        return None if recorder is None else await recorder.read(rebuild_id)


@click.command("status")
@click.argument("rebuild_id")
@click.option("--json", "as_json", is_flag=True, help="Print it as the API shows it.")
def status(rebuild_id: str, as_json: bool) -> None:
    """A projection rebuild's phase, progress and outcome, wherever it runs (CLI or API);
    `abandoned`, with what to do, once its process stopped reporting."""
    settings = get_settings()
    try:
        found = asyncio.run(_read(settings, rebuild_id))
    except BendError as exc:
        raise click.ClickException(exc.message) from exc
    if found is None:
        raise click.ClickException(
            f"no rebuild {rebuild_id} is recorded for schema {settings.database.schema_name}; "
            "start one with `bend replay projections` (or POST /api/replay/projections)")
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    _print_status(found)


def _print_status(s: dict[str, Any]) -> None:
    what = s.get("only") or "every projection"
    click.echo(f"rebuild {s['rebuild_id']}  {s['phase']}  {what} of schema {s['live_schema']} "
               f"into {s['rebuilt_schema']}")
    click.echo(f"owner {s['owner']}  started {s['started_at']}  last heartbeat "
               f"{s['heartbeat_at']}  finished {s['finished_at'] or '-'}")
    click.echo(f"read {s['records']} of {s['total']} records ({s['events_per_second']:.0f} "
               "events/s)")
    if s.get("compared"):
        diffs = s.get("differences") or []
        click.echo(f"compared {len(s.get('tables') or [])} tables: "
                   + ("identical" if not diffs else f"{len(diffs)} differ"))
        for d in diffs:
            click.echo(f"  - {d['table']}: live {d['live_rows']} rows, rebuilt "
                       f"{d['rebuilt_rows']}")
    elif s.get("note"):
        click.echo(s["note"])
    if s["phase"] == "switched" and s.get("retired_schema"):
        click.echo(f"the old schema is kept as {s['retired_schema']}")
    if s.get("error"):
        click.echo(f"error: {s['error']}")
    if s.get("abandoned"):
        click.echo(f"abandoned in phase {s.get('last_phase')!r}: {s['abandoned']}")
