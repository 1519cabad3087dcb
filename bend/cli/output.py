"""How the CLI prints: aligned tables and `key: value` blocks for people, JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

__all__ = ["Output", "ago", "clock", "duration", "short_json", "status_text", "when"]

_STATUS_COLOURS = {
    "completed": "green", "succeeded": "green", "active": "green",
    "failed": "red", "timed_out": "red", "deleted": "red",
    "cancelled": "yellow", "skipped": "yellow", "paused": "yellow",
    "running": "cyan", "started": "cyan", "pending": "blue", "queued": "blue",
    "scheduled": "blue", "retrying": "magenta", "waiting": "blue",
}


class Output:
    """Prints a command's result; with `json_mode`, only machine-readable JSON."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    def data(self, value: Any) -> None:
        """Print `value` as indented JSON (always, whatever the mode)."""
        click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))

    def json_line(self, value: Any) -> None:
        """Print `value` as one line of JSON (for streams)."""
        click.echo(json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")))

    def line(self, text: str = "", **style: Any) -> None:
        """Print a line for people (nothing in JSON mode)."""
        if not self.json_mode:
            click.secho(text, **style)

    def note(self, text: str) -> None:
        """Print a progress or hint line to stderr (in either mode: stdout stays clean)."""
        click.secho(text, err=True, dim=True)

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """Print `key: value` lines, keys aligned, None values left out."""
        shown = [(k, v) for k, v in pairs if v is not None and v != ""]
        width = max((len(k) for k, _ in shown), default=0)
        for key, value in shown:
            click.echo(f"{key + ':':<{width + 1}} {value}")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
              empty: str = "(none)") -> None:
        """Print rows under headers, columns aligned; `empty` if there are no rows."""
        cells = [[_cell(v) for v in row] for row in rows]
        if not cells:
            click.echo(empty)
            return
        widths = [max(len(h), *(len(_plain(r[i])) for r in cells)) for i, h in enumerate(headers)]
        click.echo("  ".join(h.upper().ljust(w)
                             for h, w in zip(headers, widths, strict=False)).rstrip())
        for row in cells:
            click.echo("  ".join(c + " " * (w - len(_plain(c)))
                                 for c, w in zip(row, widths, strict=False)).rstrip())


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def _plain(text: str) -> str:
    return click.unstyle(text)


def status_text(status: str | None) -> str:
    """The status, coloured by what it means (colour is dropped when not on a terminal)."""
    if not status:
        return "-"
    return click.style(status, fg=_STATUS_COLOURS.get(status))


def _parse(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def when(value: str | datetime | None) -> str:
    """A time in the local zone, to the second: `2026-11-23 21:06:01`."""
    moment = _parse(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def clock(value: str | datetime | None) -> str:
    """The time of day in the local zone: `21:06:01` (`-` for none)."""
    moment = _parse(value)
    return moment.astimezone().strftime("%H:%M:%S") if moment else "-"


def ago(value: str | datetime | None, now: datetime) -> str:
    """How long before `now`: `42s ago`, `3m ago`, `5h ago`, `2d ago`."""
    moment = _parse(value)
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def duration(ms: int | float | None) -> str:
    """A duration for people: `850ms`, `2.3s`, `4m05s`, `1h02m`."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{int(ms)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def short_json(value: Any, limit: int = 60) -> str:
    """`value` as compact JSON, cut to `limit` characters."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
