"""Run-state snapshots <-> bytes: the records of the compacted `run-states` topic.

Three record types, schemas in schemas/avro/snapshots/, framed like every Bend record
(single-object Avro: 0xC3 0x01, the CRC-64-AVRO fingerprint, the body), so the fingerprint tells
them apart:

- `RunSnapshot`, key `run_id`: an open run's events as logged; a null value (tombstone) deletes
  it once the run finished;
- `FinishedRuns`, key `~finished/<partition>/<taken_at_ms>/<covers_offset>`: the runs that
  finished since the
  previous round, one record per round (so a new owner reads a record per round, not per run);
  tombstoned by the writer once older than the window it is kept for;
- `SnapshotRound`, key `~round/<partition>`: the partition's snapshot is complete up to an
  offset of the run log.

A snapshot holds events, not a serialised `RunState`: folding them with `apply` is the only way
to a state, so a snapshot can never disagree with the log's meaning, and events already have
versioned schemas (schemas/avro/history/).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer

from bend.contracts.codec import MAGIC
from bend.contracts.errors import CorruptPayload, UnknownSchema
from bend.contracts.history import writer_schemas
from bend.contracts.schemas import SCHEMA_DIR, SchemaInfo, load_folder

__all__ = [
    "FINISHING_EVENTS", "SNAPSHOT_SCHEMA_DIR", "FinishedRuns", "RunSnapshot", "SnapshotRound",
    "decode_snapshot", "encode_snapshot", "ends_run", "finished_key", "finishing_fingerprints",
    "is_marker_key", "is_round_key", "round_key",
]

SNAPSHOT_SCHEMA_DIR = SCHEMA_DIR / "snapshots"
_HEADER = len(MAGIC) + 8
# The events after which a run takes no more commands (RunStatus.finished).
FINISHING_EVENTS = frozenset({"RunCompleted", "RunFailed", "RunCancelled"})
_ROUND_PREFIX = b"~round/"
_FINISHED_PREFIX = b"~finished/"


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """An open run's events (single-object encoded, oldest first) up to `covers_offset`."""

    run_id: str
    partition: int
    covers_offset: int
    events: tuple[bytes, ...]
    taken_at_ms: int


@dataclass(frozen=True, slots=True)
class FinishedRuns:
    """The runs of a partition that finished since the previous round, in order."""

    partition: int
    run_ids: tuple[str, ...]
    taken_at_ms: int


@dataclass(frozen=True, slots=True)
class SnapshotRound:
    """The partition's snapshot is complete: fold the run log from `covers_offset` on."""

    partition: int
    covers_offset: int
    open_runs: int
    taken_at_ms: int
    writer: str = ""


def round_key(partition: int) -> bytes:
    """The record key of a partition's round marker (run ids never start with `~`)."""
    return _ROUND_PREFIX + str(partition).encode()


def is_round_key(key: bytes | None) -> bool:
    """Whether `key` is a round marker's key."""
    return key is not None and key.startswith(_ROUND_PREFIX)


def finished_key(partition: int, taken_at_ms: int, covers_offset: int) -> bytes:
    """The record key of a round's FinishedRuns (unique per round, whoever writes it)."""
    return _FINISHED_PREFIX + f"{partition}/{taken_at_ms}/{covers_offset}".encode()


def is_marker_key(key: bytes | None) -> bool:
    """Whether `key` is a round's or a FinishedRuns' key (not a run id)."""
    return key is not None and key.startswith(b"~")


@lru_cache(maxsize=1)
def _schemas() -> dict[str, SchemaInfo]:
    return load_folder(SNAPSHOT_SCHEMA_DIR)


@lru_cache(maxsize=1)
def _by_fingerprint() -> dict[int, SchemaInfo]:
    return {info.fingerprint: info for info in _schemas().values()}


def encode_snapshot(record: RunSnapshot | FinishedRuns | SnapshotRound) -> bytes:
    """The record as single-object-encoded Avro."""
    info = _schemas()[type(record).__name__]
    values: dict[str, Any] = {f: getattr(record, f) for f in record.__slots__}
    if isinstance(record, RunSnapshot):
        values["events"] = list(record.events)
    elif isinstance(record, FinishedRuns):
        values["run_ids"] = list(record.run_ids)
    out = BytesIO()
    out.write(MAGIC + info.fingerprint.to_bytes(8, "little"))
    schemaless_writer(out, info.parsed, values)
    return out.getvalue()


def decode_snapshot(data: bytes) -> RunSnapshot | FinishedRuns | SnapshotRound:
    """The snapshot record `data` holds."""
    if len(data) < _HEADER or data[:2] != MAGIC:
        raise CorruptPayload("not a single-object Avro record (bad header)", len(data))
    fp = int.from_bytes(data[2:_HEADER], "little")
    info = _by_fingerprint().get(fp)
    if info is None:
        raise UnknownSchema(f"fingerprint {fp:016x}", len(_by_fingerprint()))
    body = BytesIO(data)
    body.seek(_HEADER)
    try:
        # A record's datum reads as a dict; fastavro types it as any datum.
        values = cast(dict[str, Any], schemaless_reader(body, info.parsed, None))
    except Exception as err:  # fastavro raises EOFError, ValueError, ...
        raise CorruptPayload(f"undecodable {info.name} body ({err!r})", len(data)) from err
    if info.name == "RunSnapshot":
        values["events"] = tuple(values["events"])
        return RunSnapshot(**values)
    if info.name == "FinishedRuns":
        values["run_ids"] = tuple(values["run_ids"])
        return FinishedRuns(**values)
    return SnapshotRound(**values)


@lru_cache(maxsize=1)
def finishing_fingerprints() -> frozenset[bytes]:
    """The 8 fingerprint bytes of every schema (current and recorded) of a run-ending event.

    The snapshot follower tells a run's end by these bytes alone, decoding nothing.
    """
    return frozenset(fp.to_bytes(8, "little") for fp, (name, _) in writer_schemas().items()
                     if name in FINISHING_EVENTS)


def ends_run(value: bytes) -> bool:
    """Whether the single-object-encoded event `value` ends its run."""
    return value[2:_HEADER] in finishing_fingerprints()
