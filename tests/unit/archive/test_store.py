"""Segment files: written whole, named by their offsets, read back in order and by range."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastavro import parse_schema, writer

from bend.archive.format import ArchivedRecord, read_rows
from bend.archive.history import Gap, gap_of
from bend.archive.store import ArchiveStore, BadSegment

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _records(topic: str, partition: int, offsets: range) -> list[ArchivedRecord]:
    return [ArchivedRecord(topic, partition, n, f"run-{n % 3}".encode(), f"v{n}".encode(),
                           1_700_000_000_000 + n, "RunStarted", f"run-{n % 3}", n + 1, AT)
            for n in offsets]


def test_segments_resume_after_the_last_and_read_back_by_range(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    assert store.next_offset("t", 0) is None and store.partitions("t") == []
    store.write(_records("t", 0, range(10)))
    store.write(_records("t", 0, range(10, 25)))
    store.write(_records("t", 2, range(5, 7)))
    assert store.next_offset("t", 0) == 25 and store.next_offset("t", 2) == 7
    assert store.partitions("t") == [0, 2]
    assert [s.first for s in store.segments("t", 0)] == [0, 10]
    assert [r.offset for r in store.read("t", 0)] == list(range(25))
    assert [r.offset for r in store.read("t", 0, 8, 12)] == [8, 9, 10, 11]
    back = list(store.read("t", 2))
    assert back == _records("t", 2, range(5, 7))  # key, value, timestamp and all


def test_a_half_written_segment_is_invisible(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    store.write(_records("t", 0, range(3)))
    (tmp_path / "t" / "0" / ".00000000000000000003-00000000000000000009.avro.1.tmp").write_bytes(
        b"half")
    assert store.next_offset("t", 0) == 3
    assert len(list(store.read("t", 0))) == 3


def test_a_segment_holds_one_partitions_records(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    with pytest.raises(ValueError):
        store.write([*_records("t", 0, range(2)), *_records("t", 1, range(2, 3))])
    with pytest.raises(ValueError):
        store.write([])


def test_an_unreadable_segment_is_named_with_what_to_do(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    segment = store.write(_records("t", 0, range(3)))
    segment.path.write_bytes(b"not avro")
    with pytest.raises(BadSegment, match="re-archive"):
        list(store.read("t", 0))


def test_files_of_the_first_format_read_without_key_and_timestamp(tmp_path: Path) -> None:
    # `bend replay export` wrote these before the archive added two optional fields.
    v1 = parse_schema({"type": "record", "name": "ArchivedEvent", "namespace": "bend.replay",
                       "fields": [{"name": "topic", "type": "string"},
                                  {"name": "partition", "type": "int"},
                                  {"name": "offset", "type": "long"},
                                  {"name": "event_type", "type": "string"},
                                  {"name": "run_id", "type": "string"},
                                  {"name": "seq", "type": "long"},
                                  {"name": "occurred_at", "type": {
                                      "type": "long", "logicalType": "timestamp-micros"}},
                                  {"name": "payload", "type": "bytes"}]})
    path = tmp_path / "old.avro"
    with path.open("wb") as out:
        writer(out, v1, [{"topic": "t", "partition": 0, "offset": 4, "event_type": "RunStarted",
                          "run_id": "r", "seq": 2, "occurred_at": AT, "payload": b"x"}])
    (row,) = list(read_rows(path))
    record = ArchivedRecord.of_row(row)
    assert (record.offset, record.key, record.timestamp, record.value) == (4, None, None, b"x")


def test_a_gap_is_what_neither_the_archive_nor_the_log_holds() -> None:
    assert gap_of("t", 0, None, 0) is None
    assert gap_of("t", 0, 10, 10) is None and gap_of("t", 0, 10, 4) is None
    assert gap_of("t", 0, None, 7) == Gap("t", 0, 0, 6)
    assert gap_of("t", 0, 10, 15) == Gap("t", 0, 10, 14)
    assert "before they were archived" in str(Gap("t", 0, 10, 14))
