"""The archive file format: an Avro object container file of log records, one per row.

Each row holds a record as its topic held it: `topic`, `partition`, `offset`, the record's
`event_type`, `run_id`, `seq` and `occurred_at` (to filter without decoding), `payload` (the
record's bytes exactly as on the topic, whose framing names its writer schema), and since
version 2 its `key` and Kafka `timestamp_ms`. `bend replay export` writes the same files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from fastavro import parse_schema, reader, writer

__all__ = ["ARCHIVE_SCHEMA", "ArchivedRecord", "LogRecord", "read_rows", "write_rows"]

ARCHIVE_SCHEMA = parse_schema({
    "type": "record", "name": "ArchivedEvent", "namespace": "bend.replay",
    "doc": "One record as its topic held it.",
    "fields": [
        {"name": "topic", "type": "string"},
        {"name": "partition", "type": "int"},
        {"name": "offset", "type": "long"},
        {"name": "event_type", "type": "string"},
        {"name": "run_id", "type": "string"},
        {"name": "seq", "type": "long"},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "payload", "type": "bytes", "doc": "The record's value as on the topic."},
        {"name": "key", "type": ["null", "bytes"], "default": None},
        {"name": "timestamp_ms", "type": ["null", "long"], "default": None,
         "doc": "The record's Kafka timestamp."},
    ],
})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LogRecord(Protocol):
    """What readers take of a record, consumed (aiokafka's ConsumerRecord) or archived."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...  # None: a tombstone (a consumed record only)
    @property
    def timestamp(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One archived record; `offset`, `key`, `value` and `timestamp` as aiokafka names them, so
    readers take it where they take a consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int | None  # ms since the epoch
    event_type: str = ""
    run_id: str = ""
    seq: int = 0
    occurred_at: datetime = _EPOCH

    def row(self) -> dict[str, Any]:
        """As a row of the archive schema."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "event_type": self.event_type, "run_id": self.run_id, "seq": self.seq,
                "occurred_at": self.occurred_at, "payload": self.value, "key": self.key,
                "timestamp_ms": self.timestamp}

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> ArchivedRecord:
        """From a row (files of version 1 have no key and timestamp)."""
        return cls(row["topic"], row["partition"], row["offset"], row.get("key"),
                   row["payload"], row.get("timestamp_ms"), row["event_type"], row["run_id"],
                   row["seq"], row["occurred_at"])


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write `rows` to `path` (deflate-compressed); how many were written."""
    rows = list(rows)
    with path.open("wb") as out:
        writer(out, ARCHIVE_SCHEMA, rows, codec="deflate",
               metadata={"bend.archive": "records/2"})
    return len(rows)


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of an archive file, in file order (OSError, ValueError if it is none)."""
    with path.open("rb") as src:
        yield from reader(src)  # type: ignore[misc]
