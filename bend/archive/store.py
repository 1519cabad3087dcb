"""Segment files on disk: `<root>/<topic>/<partition>/<first>-<last>.avro`, each holding the
records of one partition from offset `first` to `last` (gaps only where the log had none to
give), written whole to a temporary name and renamed, so a reader never sees half a file and
a crash leaves at most a temporary file, ignored and overwritten.

The segments are their own checkpoint: the archiver resumes a partition after its last
segment, and two archivers writing the same offsets write the same file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bend.archive.format import ArchivedRecord, read_rows, write_rows
from bend.core.errors import BendError

__all__ = ["ArchiveStore", "BadSegment", "Segment"]

_SEGMENT = re.compile(r"^(\d{20})-(\d{20})\.avro$")


class BadSegment(BendError):
    """A segment file cannot be read, or holds records other than its name says."""

    code = "bad_archive_segment"

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"archive segment {path} is unreadable ({detail}); restore it from a "
                         "backup, or move it away and re-archive what the log still holds")
        self.path = path


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file and the offsets it covers (both included)."""

    path: Path
    first: int
    last: int


class ArchiveStore:
    """The archive under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, topic: str, partition: int) -> Path:
        return self.root / topic / str(partition)

    def segments(self, topic: str, partition: int) -> list[Segment]:
        """The partition's segments in offset order."""
        folder = self._dir(topic, partition)
        if not folder.is_dir():
            return []
        found = []
        for entry in folder.iterdir():
            match = _SEGMENT.match(entry.name)
            if match:
                found.append(Segment(entry, int(match[1]), int(match[2])))
        return sorted(found, key=lambda s: s.first)

    def partitions(self, topic: str) -> list[int]:
        """The partitions of `topic` with at least one segment."""
        folder = self.root / topic
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir()
                      if p.name.isdigit() and self.segments(topic, int(p.name)))

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The offset after the partition's last archived record (None: nothing archived)."""
        segments = self.segments(topic, partition)
        return segments[-1].last + 1 if segments else None

    def write(self, records: Sequence[ArchivedRecord]) -> Segment:
        """Write one partition's consecutive `records` as a segment (atomically)."""
        if not records:
            raise ValueError("a segment holds at least one record")
        topic, partition = records[0].topic, records[0].partition
        if any(r.topic != topic or r.partition != partition for r in records):
            raise ValueError("a segment holds one partition's records")
        first, last = records[0].offset, records[-1].offset
        folder = self._dir(topic, partition)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{first:020d}-{last:020d}.avro"
        temporary = folder / f".{path.name}.{os.getpid()}.tmp"
        write_rows(temporary, (r.row() for r in records))
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.replace(path)
        return Segment(path, first, last)

    def read(self, topic: str, partition: int, start: int = 0,
             end: int | None = None) -> Iterator[ArchivedRecord]:
        """The partition's archived records from offset `start` up to `end` (excluded)."""
        for segment in self.segments(topic, partition):
            if segment.last < start or (end is not None and segment.first >= end):
                continue
            try:
                for row in read_rows(segment.path):
                    offset = row["offset"]
                    if offset < start or (end is not None and offset >= end):
                        continue
                    if row["topic"] != topic or row["partition"] != partition:
                        raise BadSegment(segment.path, f"it holds {row['topic']}:"
                                                       f"{row['partition']}")
                    yield ArchivedRecord.of_row(row)
            except (OSError, ValueError, KeyError) as err:
                raise BadSegment(segment.path, repr(err)) from err
