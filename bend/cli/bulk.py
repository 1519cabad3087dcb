"""`bend runs bulk WORKFLOW FILE`: one run per line of a JSON-lines or CSV file; with
`--concurrency N`, at most N of them in flight, each followed to its outcome."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
from jsonschema.validators import validator_for

from bend.cli.bulk_bounded import ItemResult, run_bounded
from bend.cli.client import ApiClient, CliError, ExitCode, api_command
from bend.cli.output import Output, status_text
from bend.cli.workflows import resolve_workflow

__all__ = ["CHUNK", "bulk", "read_inputs"]

CHUNK = 1000  # the most inputs POST /execute/bulk takes at once


def _cell(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_inputs(path: str, fmt: str | None) -> list[tuple[int, Any]]:
    """(line number, input) of each item: JSON lines, or CSV rows under a header row (a cell is
    JSON if it parses, else text; empty cells are left out)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"cannot read {path}: {err}", ExitCode.USAGE) from None
    fmt = fmt or ("csv" if path.lower().endswith(".csv") else "jsonl")
    items: list[tuple[int, Any]] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            items.append((reader.line_num, {k: _cell(v) for k, v in row.items()
                                            if k is not None and v not in (None, "")}))
        return items
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except ValueError as err:
            raise CliError(f"{path} line {number} is not JSON: {err}; write one JSON value "
                           "per line", ExitCode.USAGE) from None
    return items


def _problems(schema: dict[str, Any] | None,
              items: list[tuple[int, Any]]) -> list[tuple[int, str, str]]:
    """(line, location, message) of each input that breaks the workflow's input_schema."""
    if not schema:
        return []
    validator = validator_for(schema)(schema)
    found = []
    for number, value in items:
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
            location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                               for p in error.path) or "(input)"
            found.append((number, location.lstrip("."), error.message))
    return found


@click.command()
@click.argument("workflow")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="Default: csv for a .csv file, else JSON lines.")
@click.option("--idempotency-key", default=None,
              help="Run i of chunk c (1000 inputs each) gets the key KEY:c:i, so starting the "
                   "same file again starts nothing twice.")
@click.option("--version", type=click.IntRange(1), default=None, help="Default: the latest.")
@click.option("--concurrency", type=click.IntRange(1, 100), default=None, metavar="N",
              help="Keep at most N runs in flight: start the next when one finishes, follow "
                   "each to its end and print its outcome; exit 1 if any did not complete.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=3600.0,
              show_default=True, help="With --concurrency: how long to wait for each run.")
@api_command
def bulk(api: ApiClient, out: Output, workflow: str, file: str, fmt: str | None,
         idempotency_key: str | None, version: int | None, concurrency: int | None,
         timeout_s: float) -> None:
    """Start one run of WORKFLOW per input in FILE (JSON lines, or CSV with a header row).

    Every input is checked against the workflow's input schema first: if any is wrong, each
    problem is listed with its line and nothing is started. Without --concurrency, all are
    started at once and the command ends; with it, at most N run at a time and the command
    waits for each outcome.
    """
    items = read_inputs(file, fmt)
    if not items:
        raise CliError(f"{file} holds no inputs", ExitCode.USAGE)
    wf = resolve_workflow(api, workflow)
    if version is not None and version != wf["version"]:
        wf = api.get(f"/api/workflows/{wf['workflow_id']}", version=version)
    problems = _problems(wf["definition"].get("input_schema"), items)
    if problems:
        bad = len({number for number, _, _ in problems})
        raise CliError(f"{bad} of {len(items)} inputs do not match {wf['name']}'s input schema; "
                       "nothing was started", ExitCode.USAGE,
                       [(f"line {n} {where}", what) for n, where, what in problems])
    if concurrency is not None:
        _bounded(api, out, wf, items, concurrency, idempotency_key, version, timeout_s)
        return
    results = []
    for c, start in enumerate(range(0, len(items), CHUNK)):
        chunk = items[start:start + CHUNK]
        body: dict[str, Any] = {"inputs": [value for _, value in chunk]}
        if idempotency_key is not None:
            body["idempotency_key"] = f"{idempotency_key}:{c}"
        if version is not None:
            body["version"] = version
        accepted = api.post(f"/api/workflows/{wf['workflow_id']}/execute/bulk", body)
        results += [{"line": number, **r}
                    for (number, _), r in zip(chunk, accepted["runs"], strict=False)]
    if out.json_mode:
        out.data({"workflow_id": wf["workflow_id"], "count": len(results), "runs": results})
        return
    out.table(["line", "run", "status"],
              [[r["line"], r["run_id"], status_text(r["status"])] for r in results])
    out.line()
    out.line(f"started {len(results)} runs of {wf['name']}")


def _bounded(api: ApiClient, out: Output, wf: dict[str, Any], items: list[tuple[int, Any]],
             concurrency: int, idempotency_key: str | None, version: int | None,
             timeout_s: float) -> None:
    """Run the items at most `concurrency` at a time; print each outcome; exit 1 on a failure."""
    began = time.monotonic()

    def progress(result: ItemResult) -> None:
        if not out.json_mode:
            click.echo(f"line {result.line}: {result.run_id or '-'} {result.status}", err=True)

    results = run_bounded(api, wf["workflow_id"], items, concurrency=concurrency,
                          idempotency_key=idempotency_key, version=version,
                          timeout_s=timeout_s, on_result=progress)
    took = time.monotonic() - began
    counts = Counter(r.status for r in results)
    if out.json_mode:
        out.data({"workflow_id": wf["workflow_id"], "count": len(results),
                  "concurrency": concurrency, "seconds": round(took, 3), "statuses": counts,
                  "runs": [r.as_dict() for r in results]})
    else:
        out.table(["line", "run", "status", "seconds", "detail"],
                  [[r.line, r.run_id or "-", status_text(r.status), f"{r.seconds:.1f}",
                    r.reason or "-"] for r in results])
        out.line()
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        out.line(f"{len(results)} runs of {wf['name']}, at most {concurrency} at once, in "
                 f"{took:.1f} s: {summary}")
    bad = sum(not r.ok for r in results)
    if bad:
        raise CliError(f"{bad} of {len(results)} runs did not complete; see the detail column "
                       "(or `bend runs show RUN`)", ExitCode.OTHER)
