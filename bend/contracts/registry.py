"""The Confluent wire format through a schema registry: 0x00, a 4-byte schema id, the Avro body.

Used when `BEND_KAFKA__SCHEMA_REGISTRY_URL` is set. Subjects follow the record-name strategy
(`bend.events.StepSucceeded`), so a type has one subject whatever topic carries it. Ids are
cached per process: the registry is asked once per type written and once per id read.
"""

from __future__ import annotations

import json
from io import BytesIO
from threading import Lock
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from bend.contracts import datum as _datum
from bend.contracts.wire import MAGIC, Codec, ReadPlan, read_body
from bend.contracts.errors import (
    CorruptPayload, RegistryUnavailable, UnknownSchema,
)
from bend.contracts.schemas import fingerprint_of, parse
from bend.core.commands import Command
from bend.core.events import Event

__all__ = ["RegistryCodec", "subject_for"]

_HEADER = 5
_NOT_FOUND = (40401, 40403)  # subject not found, schema not found


def subject_for(shape: _datum.Shape) -> str:
    """The record-name-strategy subject of a type: its schema's full name."""
    return shape.info.fullname


class RegistryCodec:
    """Encode and decode through a schema registry; reads single-object data too."""

    def __init__(self, url: str, codec: Codec, timeout_s: float = 10.0) -> None:
        self.url = url
        self._codec = codec
        self._client = SchemaRegistryClient({"url": url, "timeout": timeout_s, "max.retries": 2})
        self._headers: dict[type, bytes] = {}
        self._readers: dict[int, ReadPlan] = {}
        self._lock = Lock()  # producers may share one codec across threads

    def encode(self, record: Event | Command) -> bytes:
        """`record` in the Confluent wire format; registers its schema on first use."""
        shape = self._codec.shape(type(record))
        header = self._headers.get(shape.cls) or self._register(shape)
        out = BytesIO()
        out.write(header)
        _datum.write(out, shape, record)
        return out.getvalue()

    def decode(self, data: bytes) -> Event | Command:
        """The record in `data`, whether registry-framed or single-object-encoded."""
        if data[:2] == MAGIC:
            return self._codec.decode(data)
        if len(data) < _HEADER or data[0] != 0:
            problem = (f"truncated header ({len(data)} of {_HEADER} bytes)" if data[:1] == b"\0"
                       else f"bad magic {data[:1].hex() or 'none'} (expected 00 or c301)")
            raise CorruptPayload(problem, len(data))
        schema_id = int.from_bytes(data[1:_HEADER], "big")
        entry = self._readers.get(schema_id) or self._fetch(schema_id)
        return read_body(data, _HEADER, entry.writer, entry.reader, entry.shape)

    def prime(self) -> int:
        """Register every record type's current schema now (blocking HTTP calls, so callers
        on an event loop run this in a thread), so that encoding a record, or decoding one
        written with a current schema, never waits on the registry later; how many types."""
        names = self._codec.record_names()
        for name in names:
            shape = self._codec.shape_named(name)
            if shape.cls not in self._headers:
                self._register(shape)
        return len(names)

    def _register(self, shape: _datum.Shape) -> bytes:
        text = json.dumps(shape.info.expanded, separators=(",", ":"))
        with self._lock:
            schema_id = self._call(lambda: self._client.register_schema(
                subject_for(shape), Schema(text, "AVRO")))
            header = b"\0" + int(schema_id).to_bytes(4, "big")
            self._headers[shape.cls] = header
            # Records written with this id are read with the same (current) schema.
            self._readers.setdefault(int(schema_id), ReadPlan(shape.info.parsed, None, shape))
        return header

    def _fetch(self, schema_id: int) -> ReadPlan:
        with self._lock:
            try:
                found = self._client.get_schema(schema_id)
            except SchemaRegistryError as err:
                if err.error_code in _NOT_FOUND or err.http_status_code == 404:
                    raise UnknownSchema(f"registry id {schema_id}", self._codec.known_schemas,
                                        f"{self.url} does not know it either") from err
                raise RegistryUnavailable(self.url, str(err)) from err
            except Exception as err:  # connection refused, timeout, bad TLS, ...
                raise RegistryUnavailable(self.url, repr(err)) from err
            assert found.schema_str is not None  # a registered schema has its text
            writer_json: dict[str, Any] = json.loads(found.schema_str)
            name = str(writer_json.get("name", "")).rpartition(".")[2]
            shape = self._codec.shape_named(name)  # UnknownEventType for foreign records
            writer = parse(writer_json)
            same = fingerprint_of(writer_json) == shape.info.fingerprint
            entry = ReadPlan(shape.info.parsed if same else writer,
                            None if same else shape.info.parsed, shape)
            self._readers[schema_id] = entry
            return entry

    def _call(self, request: Any) -> Any:
        try:
            return request()
        except SchemaRegistryError as err:
            raise RegistryUnavailable(self.url, str(err)) from err
        except Exception as err:
            raise RegistryUnavailable(self.url, repr(err)) from err
