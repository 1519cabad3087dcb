"""Avro values of a Kafka trigger's records, as JSON-like data for its filter and input mapping.

Three framings are read: the Confluent wire format (0x00, a 4-byte schema id, the body; the
writer's schema comes from the schema registry), Avro single-object encoding (C3 01, the
writer's CRC-64-AVRO fingerprint, the body; the trigger's `avro_schema` must be that writer's)
and bare Avro binary written with the trigger's `avro_schema`. With a registry configured, a
record starting with 0x00 is taken as registry-framed.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from io import BytesIO
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.schema import fingerprint, to_parsing_canonical_form

from bend.core.errors import BendError
from bend.core.triggers import KafkaTrigger

__all__ = ["AvroDecoder", "RegistryUnreachable", "UndecodableRecord", "jsonable"]

_SINGLE_OBJECT = b"\xc3\x01"


class UndecodableRecord(BendError):
    """A record on a Kafka trigger's topic is not Avro the trigger can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the record is not readable Avro: {reason}; check the trigger's "
                         "avro_schema and schema_registry_url against the producer's")
        self.reason = reason


class RegistryUnreachable(BendError):
    """The schema registry did not answer; the record is read again once it does."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"the schema registry at {url} did not answer ({reason}); check it "
                         "is up and the trigger's schema_registry_url (or "
                         "BEND_KAFKA__SCHEMA_REGISTRY_URL)")
        self.url = url


def jsonable(value: Any) -> Any:
    """An Avro value as JSON-like data: times as ISO 8601, decimals as numbers, bytes base64."""
    match value:
        case dict():
            return {k: jsonable(v) for k, v in value.items()}
        case list() | tuple():
            return [jsonable(v) for v in value]
        case bytes():
            return base64.b64encode(value).decode()
        case Decimal():
            return int(value) if value == value.to_integral_value() else float(value)
        case dt.datetime() | dt.date() | dt.time():
            return value.isoformat()
        case uuid.UUID():
            return str(value)
    return value


def _fingerprint(parsed: Any) -> int:
    return int(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"), 16)


class AvroDecoder:
    """Decodes one trigger's records; registry schemas are fetched once per id."""

    def __init__(self, spec: KafkaTrigger, registry_url: str | None) -> None:
        self.registry_url = spec.schema_registry_url or registry_url
        self.reader = fastavro.parse_schema(spec.avro_schema) if spec.avro_schema else None
        self._fingerprint = _fingerprint(self.reader) if self.reader is not None else None
        self._client = (SchemaRegistryClient({"url": self.registry_url, "timeout": 10})
                        if self.registry_url else None)
        self._writers: dict[int, Any] = {}

    async def decode(self, data: bytes) -> Any:
        """The record's value as JSON-like data, or UndecodableRecord saying why."""
        if data[:2] == _SINGLE_OBJECT:
            return self._read(data[10:], self._single_object_writer(data))
        if data[:1] == b"\0" and self._client is not None:
            if len(data) < 5:
                raise UndecodableRecord(f"a registry header needs 5 bytes, the record has "
                                        f"{len(data)}")
            return self._read(data[5:], await self._writer(int.from_bytes(data[1:5], "big")))
        if self.reader is None:
            raise UndecodableRecord("it is not registry-framed or single-object-encoded and "
                                    "the trigger gives no avro_schema to read it with"
                                    + ("" if self._client else " (no schema registry set)"))
        return self._read(data, self.reader)

    def _single_object_writer(self, data: bytes) -> Any:
        if len(data) < 10:
            raise UndecodableRecord(f"a single-object header needs 10 bytes, the record has "
                                    f"{len(data)}")
        found = int.from_bytes(data[2:10], "little")
        if self.reader is None or found != self._fingerprint:
            raise UndecodableRecord(f"it was written with the schema of fingerprint "
                                    f"{found:016x}, which is not the trigger's avro_schema")
        return self.reader

    async def _writer(self, schema_id: int) -> Any:
        if schema_id not in self._writers:
            assert self._client is not None
            try:
                found = await asyncio.to_thread(self._client.get_schema, schema_id)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise UndecodableRecord(f"{self.registry_url} knows no schema id "
                                            f"{schema_id}") from None
                raise RegistryUnreachable(self.registry_url or "", str(exc)) from None
            except Exception as exc:  # connection refused, timeout, bad TLS
                raise RegistryUnreachable(self.registry_url or "", repr(exc)) from None
            try:
                assert found.schema_str is not None  # a registered schema has its text
                self._writers[schema_id] = fastavro.parse_schema(json.loads(found.schema_str))
            except Exception as exc:  # a JSON or Protobuf schema under that id
                raise UndecodableRecord(f"schema id {schema_id} is not an Avro schema: "
                                        f"{exc}") from None
        return self._writers[schema_id]

    def _read(self, body: bytes, writer: Any) -> Any:
        try:
            value = fastavro.schemaless_reader(BytesIO(body), writer, self.reader)
        except Exception as exc:  # truncated, wrong schema, unresolvable reader schema
            raise UndecodableRecord(f"{type(exc).__name__}: {exc}") from None
        return jsonable(value)
