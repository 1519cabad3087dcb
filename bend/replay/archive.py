"""Run events archived in an Avro object container file, and read back.

Each archive record holds one event as the log held it: `topic`, `partition`, `offset`, the
event's `event_type`, `run_id`, `seq` and `occurred_at` (for reading without decoding), and
`payload`, the record's bytes exactly as on the topic (Bend's single-object encoding, whose
fingerprint names the writer schema; bend.contracts.codec decodes them, old versions included).
Keeping the bytes rather than re-encoding means an archive replays exactly what was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from fastavro import parse_schema, reader, writer

from bend.contracts.codec import decode
from bend.core.errors import BendError
from bend.core.events import Event
from bend.replay.read import Recorded

__all__ = ["ARCHIVE_SCHEMA", "BadArchive", "read_archive", "write_archive"]

ARCHIVE_SCHEMA = parse_schema({
    "type": "record", "name": "ArchivedEvent", "namespace": "bend.replay",
    "doc": "One run event as the run-events topic held it.",
    "fields": [
        {"name": "topic", "type": "string"},
        {"name": "partition", "type": "int"},
        {"name": "offset", "type": "long"},
        {"name": "event_type", "type": "string"},
        {"name": "run_id", "type": "string"},
        {"name": "seq", "type": "long"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "payload", "type": "bytes", "doc": "Single-object-encoded Avro of the event."},
    ],
})


class BadArchive(BendError):
    """The file is no archive of run events, or one of its records does not decode."""

    code = "bad_archive"

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path} is not a readable event archive ({detail}); write one with "
                         "`bend replay export`")


def write_archive(path: Path, recorded: Iterable[Recorded]) -> int:
    """Write `recorded` to `path` (deflate-compressed); how many records were written."""
    rows = [{"topic": r.topic, "partition": r.partition, "offset": r.offset,
             "event_type": type(r.event).__name__, "run_id": r.event.run_id or "",
             "seq": r.event.seq, "occurred_at": r.event.occurred_at, "payload": r.raw}
            for r in recorded]
    with path.open("wb") as out:
        writer(out, ARCHIVE_SCHEMA, rows, codec="deflate",
               metadata={"bend.archive": "run-events/1"})
    return len(rows)


def read_archive(path: Path) -> Iterator[Recorded]:
    """The archived events, in file order, decoded with the current schemas."""
    try:
        with path.open("rb") as src:
            for row in reader(src):
                event = decode(row["payload"])  # type: ignore[index]
                if not isinstance(event, Event):
                    raise BadArchive(path, f"offset {row['offset']} holds a command")  # type: ignore[index]
                yield Recorded(row["topic"], row["partition"], row["offset"],  # type: ignore[index]
                               row["payload"], event)  # type: ignore[index]
    except (OSError, ValueError) as exc:
        raise BadArchive(path, str(exc)) from exc
    except BendError as exc:
        if isinstance(exc, BadArchive):
            raise
        raise BadArchive(path, exc.message) from exc
