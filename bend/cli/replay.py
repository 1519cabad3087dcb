"""`bend replay run|export|import|fork|projections|status`: a run's recorded events folded,
archived, forked; the read model rebuilt from the log and switched in (bend/cli/rebuilds.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import click

from bend.cli.errors import clear_errors
from bend.cli.output import duration
from bend.cli.rebuilds import projections, status
from bend.replay.archive import read_archive, write_archive
from bend.replay.fork import fork_run, parse_assignment
from bend.replay.read import read_log
from bend.replay.replay import ReplayReport, replay_run
from bend.settings import get_settings

__all__ = ["replay"]


@click.group()
def replay() -> None:
    """Inspect, archive and fork runs from their recorded events; rebuild the read model."""


@replay.command("run")
@click.argument("run_id")
@click.option("--archive", type=click.Path(exists=True, path_type=Path),
              help="Replay from an archive written by `bend replay export`, not Kafka.")
@click.option("--no-projection", is_flag=True, help="Skip the comparison with the read model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@clear_errors
def run_(run_id: str, archive: Path | None, no_projection: bool, as_json: bool) -> None:
    """Fold RUN_ID's events, print its timeline; exit 1 if the projection disagrees."""
    report = asyncio.run(replay_run(get_settings(), run_id, archive=archive,
                                    check_projection=not no_projection))
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        _print(report)
    if report.differences:
        raise SystemExit(1)


def _print(report: ReplayReport) -> None:
    s = report.state
    click.echo(f"run {s.run_id}  {s.workflow_id} v{s.workflow_version}  {s.status.value}  "
               f"{len(report.events)} events folded in {report.fold_seconds * 1000:.1f} ms")
    if s.forked_from_run_id:
        click.echo(f"forked from {s.forked_from_run_id} at {s.fork_step_id}")
    for line in report.steps:
        if line.skipped is not None:
            click.echo(f"  {line.step_id:<24} skipped: {line.skipped}")
        for a in line.attempts:
            took = "" if a.duration_ms is None else (
                f"queued {duration(a.queued_ms)}, ran {duration(a.duration_ms)}")
            calls = (f"  llm {a.llm_calls} ({a.prompt_tokens}+{a.completion_tokens} tokens)"
                     if a.llm_calls else "") + (f"  tools {a.tool_calls}" if a.tool_calls else "")
            click.echo(f"  {line.step_id:<24} #{a.attempt} {line.node_type:<10} "
                       f"{a.outcome:<10} {took:>26}{calls}")
    if not report.checked:
        click.echo("projection not checked")
    elif report.differences:
        click.echo("the projection differs from the fold:")
        for d in report.differences:
            click.echo(f"  - {d}")
    else:
        click.echo("projection agrees with the fold")


@replay.command("export")
@click.argument("run_ids", nargs=-1)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="The Avro file to write.")
@click.option("--since", type=click.DateTime(), help="Events at or after (UTC).")
@click.option("--until", type=click.DateTime(), help="Events before (UTC).")
@clear_errors
def export(run_ids: tuple[str, ...], out: Path, since: datetime | None,
           until: datetime | None) -> None:
    """Write the events of RUN_IDS (or of a time range) to an Avro archive."""
    if not run_ids and since is None and until is None:
        raise click.UsageError("name run ids or a --since/--until range")
    recorded = asyncio.run(read_log(get_settings(), run_ids=run_ids or None,
                                    since=_utc(since), until=_utc(until)))
    recorded.sort(key=lambda r: (r.event.run_id or "", r.event.seq))
    click.echo(f"wrote {write_archive(out, recorded)} events to {out}")


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=value.tzinfo or timezone.utc)


@replay.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON line per event.")
@clear_errors
def import_(path: Path, as_json: bool) -> None:
    """Read an archive back: each event with where it was recorded."""
    runs: dict[str, int] = {}
    for r in read_archive(path):
        runs[r.event.run_id or ""] = runs.get(r.event.run_id or "", 0) + 1
        if as_json:
            click.echo(json.dumps({"topic": r.topic, "partition": r.partition,
                                   "offset": r.offset, "run_id": r.event.run_id,
                                   "seq": r.event.seq, "event_type": r.event.event_type,
                                   "occurred_at": r.event.occurred_at.isoformat()}))
        else:
            click.echo(f"{r.partition}:{r.offset}  {r.event.run_id}  #{r.event.seq}  "
                       f"{r.event.event_type}")
    if not as_json:
        click.echo(f"{sum(runs.values())} events of {len(runs)} runs")


@replay.command("fork")
@click.argument("run_id")
@click.option("--from", "from_step", required=True, help="The step to run again (and after).")
@click.option("--set", "assignments", multiple=True, help="key=value to change in the input.")
@click.option("--input", "input_file", type=click.Path(exists=True, path_type=Path),
              help="A JSON file replacing the input.")
@click.option("--json", "as_json", is_flag=True)
@clear_errors
def fork(run_id: str, from_step: str, assignments: tuple[str, ...], input_file: Path | None,
         as_json: bool) -> None:
    """Start a new run reusing RUN_ID's outputs before --from STEP."""
    try:
        overrides = dict(parse_assignment(a) for a in assignments)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    new_input = json.loads(input_file.read_text()) if input_file else None
    cmd = asyncio.run(fork_run(get_settings(), run_id, from_step, input=new_input,
                               overrides=overrides))
    if as_json:
        click.echo(json.dumps({"run_id": cmd.run_id, "forked_from_run_id": run_id,
                               "fork_step_id": from_step, "reused": sorted(cmd.seed)}))
    else:
        click.echo(f"started {cmd.run_id}, forked from {run_id} at {from_step} "
                   f"(reusing {', '.join(sorted(cmd.seed)) or 'nothing'})")


replay.add_command(projections)
replay.add_command(status)
