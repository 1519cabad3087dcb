"""The Avro single-object wire format: 0xC3 0x01, the writer schema's CRC-64-AVRO fingerprint
(8 bytes, little endian), then the schemaless Avro body (`Codec`). The writer schema is found by
fingerprint among the current and every recorded schema and resolved to the current one.

bend.contracts.codec picks the process's codec (this one, or the schema registry's, which reads
this format too); neither that module nor the registry's is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader

from bend.contracts import datum as _datum
from bend.contracts.errors import CorruptPayload, UnknownEventType, UnknownSchema
from bend.contracts.history import writer_schemas
from bend.contracts.schemas import SchemaInfo, current_schemas, parse
from bend.core.commands import COMMAND_TYPES, Command
from bend.core.events import EVENT_TYPES, Event

__all__ = ["MAGIC", "RECORD_TYPES", "Codec", "ReadPlan", "read_body"]

MAGIC = b"\xc3\x01"
_HEADER = len(MAGIC) + 8
RECORD_TYPES: Mapping[str, type[Event] | type[Command]] = {**EVENT_TYPES, **COMMAND_TYPES}


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How to read one writer schema: its parsed form, the reader's (None: same), the type."""

    writer: dict[str, Any]
    reader: dict[str, Any] | None
    shape: _datum.Shape


class Codec:
    """Single-object encoding of every catalogued type; schemas parsed once, readers cached."""

    def __init__(self, schemas: Mapping[str, SchemaInfo] | None = None,
                 writers: Mapping[int, tuple[str, dict[str, Any]]] | None = None) -> None:
        self._schemas = current_schemas() if schemas is None else schemas
        self._writers = writer_schemas() if writers is None else writers
        self._shapes: dict[type, tuple[_datum.Shape, bytes]] = {}
        self._readers: dict[int, ReadPlan] = {}

    def encode(self, record: Event | Command) -> bytes:
        """The record as single-object-encoded Avro."""
        shape, header = self._shapes.get(type(record)) or self._shape(type(record))
        out = BytesIO()
        out.write(header)
        _datum.write(out, shape, record)
        return out.getvalue()

    def decode(self, data: bytes) -> Event | Command:
        """The record `data` holds, read with the current schema of its type."""
        if len(data) < _HEADER or data[:2] != MAGIC:
            raise CorruptPayload(_bad_header(data), len(data))
        fp = int.from_bytes(data[2:_HEADER], "little")
        entry = self._readers.get(fp) or self._reader(fp)
        return read_body(data, _HEADER, entry.writer, entry.reader, entry.shape)

    def record_names(self) -> list[str]:
        """The names of the record types this codec writes (each has a current schema)."""
        return [name for name in RECORD_TYPES if name in self._schemas]

    @property
    def known_schemas(self) -> int:
        """How many writer schemas (current and recorded) this codec can read."""
        return len(self._writers)

    def shape(self, cls: type) -> _datum.Shape:
        """The cached encoding plan of a record class."""
        return (self._shapes.get(cls) or self._shape(cls))[0]

    def shape_named(self, name: str) -> _datum.Shape:
        """The encoding plan of the catalogued type called `name`."""
        cls = RECORD_TYPES.get(name)
        if cls is None or name not in self._schemas:
            raise UnknownEventType(name)
        return self.shape(cls)

    def _shape(self, cls: type) -> tuple[_datum.Shape, bytes]:
        name = cls.__name__
        if RECORD_TYPES.get(name) is not cls or name not in self._schemas:
            raise UnknownEventType(name)
        info = self._schemas[name]
        entry = (_datum.Shape.of(cls, info), MAGIC + info.fingerprint.to_bytes(8, "little"))
        self._shapes[cls] = entry
        return entry

    def _reader(self, fp: int) -> ReadPlan:
        known = self._writers.get(fp)
        if known is None:
            raise UnknownSchema(f"fingerprint {fp:016x}", self.known_schemas)
        name, expanded = known
        shape = self.shape_named(name)
        current = shape.info
        writer = current.parsed if fp == current.fingerprint else parse(expanded)
        entry = ReadPlan(writer, None if writer is current.parsed else current.parsed, shape)
        self._readers[fp] = entry
        return entry


def read_body(data: bytes, start: int, writer: dict[str, Any], reader: dict[str, Any] | None,
              shape: _datum.Shape) -> Event | Command:
    """Read the Avro body at `data[start:]` (all of it) and build the record."""
    body = BytesIO(data)
    body.seek(start)
    try:
        # A record's datum reads as a dict; fastavro types it as any datum.
        values = cast("dict[str, Any]", schemaless_reader(body, writer, reader))
    except Exception as err:  # fastavro raises EOFError, ValueError, UnicodeDecodeError, ...
        raise CorruptPayload(f"undecodable {shape.info.name} body ({err!r})", len(data)) from err
    left = len(data) - body.tell()
    if left:
        raise CorruptPayload(f"{left} trailing byte(s) after the {shape.info.name} body",
                             len(data))
    record: Event | Command = _datum.build(shape, values, len(data))
    return record


def _bad_header(data: bytes) -> str:
    if not data:
        return "the value is empty (a tombstone?)"
    if data[:1] == b"\x00":
        return ("it starts with 0x00, the schema-registry wire format; set "
                "BEND_KAFKA__SCHEMA_REGISTRY_URL to read it")
    if data[:2] != MAGIC[: len(data[:2])] or len(data) >= _HEADER:
        return f"bad magic {data[:2].hex() or 'none'} (expected c301)"
    return f"truncated header ({len(data)} of {_HEADER} bytes)"
