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

from bend.archive.format import ARCHIVE_SCHEMA, ArchivedRecord, read_rows, write_rows
from bend.contracts.codec import decode
from bend.core.errors import BendError
from bend.core.events import Event
from bend.replay.read import Recorded

__all__ = ["ARCHIVE_SCHEMA", "BadArchive", "read_archive", "write_archive"]


class BadArchive(BendError):
    """The file is no archive of run events, or one of its records does not decode."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path} is not a readable event archive ({detail}); write one with "
                         "`bend replay export`")


def write_archive(path: Path, recorded: Iterable[Recorded]) -> int:
    """Write `recorded` to `path` (deflate-compressed); how many records were written."""
    return write_rows(path, (ArchivedRecord(
        r.topic, r.partition, r.offset, None, r.raw, None, type(r.event).__name__,
        r.event.run_id or "", r.event.seq, r.event.occurred_at).row() for r in recorded))


def read_archive(path: Path) -> Iterator[Recorded]:
    """The archived events, in file order, decoded with the current schemas."""
    try:
        for row in read_rows(path):
            event = decode(row["payload"])
            if not isinstance(event, Event):
                raise BadArchive(path, f"offset {row['offset']} holds a command")
            yield Recorded(row["topic"], row["partition"], row["offset"], row["payload"], event)
    except (OSError, ValueError) as exc:
        raise BadArchive(path, str(exc)) from exc
    except BendError as exc:
        if isinstance(exc, BadArchive):
            raise
        raise BadArchive(path, exc.message) from exc
