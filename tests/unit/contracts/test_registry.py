"""The schema-registry wire format against a tiny in-process registry (Karapace is not on PyPI).

The fake speaks the two calls the Confluent client makes (register a subject's version, fetch a
schema by id) over real HTTP on 127.0.0.1, so the client, its caching and our framing are real.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bend.contracts.codec import Codec, codec_for, encode
from bend.contracts.errors import CorruptPayload, RegistryUnavailable, UnknownSchema
from bend.contracts.registry import RegistryCodec
from bend.core.commands import CompleteStep
from bend.core.events import StepSucceeded
from bend.settings import KafkaSettings, Settings


@dataclass
class FakeRegistry:
    """Schemas by id, subjects' versions, and a log of requests."""

    url: str = ""
    schemas: dict[int, str] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture()
def registry() -> Iterator[FakeRegistry]:
    """A registry on 127.0.0.1 on a free port, stopped after the test."""
    state = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            state.requests.append(f"POST {self.path}")
            parts = self.path.split("?")[0].strip("/").split("/")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
                return self._reply(404, {"error_code": 404, "message": "no such endpoint"})
            text = body["schema"]
            schema_id = next((i for i, s in state.schemas.items() if s == text), None)
            if schema_id is None:
                schema_id = len(state.schemas) + 1
                state.schemas[schema_id] = text
            state.subjects.setdefault(parts[1], []).append(schema_id)
            self._reply(200, {"id": schema_id})

        def do_GET(self) -> None:
            state.requests.append(f"GET {self.path}")
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] == ["schemas", "ids"] and int(parts[2]) in state.schemas:
                return self._reply(200, {"schema": state.schemas[int(parts[2])]})
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _event(**changes: object) -> StepSucceeded:
    return StepSucceeded(event_id="e", run_id="r", workflow_id="w", seq=1,
                         occurred_at=datetime(2026, 5, 1, tzinfo=timezone.utc),
                         step_id="s", output={"ok": True}, **changes)


def test_settings_with_a_registry_url_give_the_registry_codec(registry: FakeRegistry) -> None:
    settings = Settings(kafka=KafkaSettings(schema_registry_url=registry.url))
    assert isinstance(codec_for(settings), RegistryCodec)
    assert isinstance(codec_for(Settings()), Codec)


def test_records_round_trip_in_the_confluent_wire_format(registry: FakeRegistry) -> None:
    codec = RegistryCodec(registry.url, Codec())
    data = codec.encode(_event())
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == 1
    assert codec.decode(data) == _event()
    assert list(registry.subjects) == ["bend.events.StepSucceeded"]


def test_schema_ids_are_cached_per_type_and_per_id(registry: FakeRegistry) -> None:
    writer = RegistryCodec(registry.url, Codec())
    for i in range(5):
        writer.encode(_event(attempt=i + 1))
    command = CompleteStep(event_id="c", run_id="r", workflow_id="w", step_id="s",
                           occurred_at=datetime(2026, 5, 1, tzinfo=timezone.utc))
    data = writer.encode(command)
    reader = RegistryCodec(registry.url, Codec())  # another process: knows no id yet
    for _ in range(3):
        assert reader.decode(data) == command
    assert sum(r.startswith("POST") for r in registry.requests) == 2
    assert sum(r.startswith("GET") for r in registry.requests) == 1


def test_the_registry_codec_still_reads_single_object_data(registry: FakeRegistry) -> None:
    assert RegistryCodec(registry.url, Codec()).decode(encode(_event())) == _event()
    assert registry.requests == []


def test_an_id_the_registry_does_not_know_is_an_unknown_schema(registry: FakeRegistry) -> None:
    with pytest.raises(UnknownSchema, match="registry id 99"):
        RegistryCodec(registry.url, Codec()).decode(b"\x00\x00\x00\x00\x63\x02")


def test_a_cut_registry_header_is_corrupt(registry: FakeRegistry) -> None:
    with pytest.raises(CorruptPayload, match="truncated header"):
        RegistryCodec(registry.url, Codec()).decode(b"\x00\x00\x01")


def test_a_registry_that_does_not_answer_says_so(registry: FakeRegistry) -> None:
    codec = RegistryCodec("http://127.0.0.1:9", Codec(), timeout_s=2)  # discard port: closed
    with pytest.raises(RegistryUnavailable, match="127.0.0.1:9"):
        codec.encode(_event())
