"""The schema-registry wire format against a tiny in-process registry (Karapace is not on PyPI).

The fake (bend.devstack.schema_registry) speaks the Confluent registry's REST calls over real
HTTP on 127.0.0.1, so the client, its caching and our framing are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from bend.contracts import codec as process
from bend.contracts.codec import MAGIC, Codec, codec_for, encode
from bend.contracts.errors import CorruptPayload, RegistryUnavailable, UnknownSchema
from bend.contracts.registry import RegistryCodec
from bend.core.commands import CompleteStep
from bend.core.events import StepSucceeded
from bend.devstack.schema_registry import SchemaRegistry, start_schema_registry
from bend.settings import KafkaSettings, Settings, get_settings


@pytest.fixture()
def registry() -> Iterator[SchemaRegistry]:
    """A registry on 127.0.0.1 on a free port, stopped after the test."""
    served = start_schema_registry()
    try:
        yield served
    finally:
        served.stop()


def _event(**changes: object) -> StepSucceeded:
    return StepSucceeded(event_id="e", run_id="r", workflow_id="w", seq=1,
                         occurred_at=datetime(2026, 5, 1, tzinfo=timezone.utc),
                         step_id="s", output={"ok": True}, **changes)


def test_settings_with_a_registry_url_give_the_registry_codec(registry: SchemaRegistry) -> None:
    settings = Settings(kafka=KafkaSettings(schema_registry_url=registry.url))
    assert isinstance(codec_for(settings), RegistryCodec)
    assert isinstance(codec_for(Settings()), Codec)


def test_records_round_trip_in_the_confluent_wire_format(registry: SchemaRegistry) -> None:
    codec = RegistryCodec(registry.url, Codec())
    data = codec.encode(_event())
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == 1
    assert codec.decode(data) == _event()
    assert list(registry.state.subjects) == ["bend.events.StepSucceeded"]


def test_schema_ids_are_cached_per_type_and_per_id(registry: SchemaRegistry) -> None:
    writer = RegistryCodec(registry.url, Codec())
    for i in range(5):
        writer.encode(_event(attempt=i + 1))
    command = CompleteStep(event_id="c", run_id="r", workflow_id="w", step_id="s",
                           occurred_at=datetime(2026, 5, 1, tzinfo=timezone.utc))
    data = writer.encode(command)
    reader = RegistryCodec(registry.url, Codec())  # another process: knows no id yet
    for _ in range(3):
        assert reader.decode(data) == command
    assert sum(r.startswith("POST") for r in registry.state.requests) == 2
    assert sum(r.startswith("GET") for r in registry.state.requests) == 1


def test_the_registry_codec_still_reads_single_object_data(registry: SchemaRegistry) -> None:
    assert RegistryCodec(registry.url, Codec()).decode(encode(_event())) == _event()
    assert registry.state.requests == []


def test_an_id_the_registry_does_not_know_is_an_unknown_schema(registry: SchemaRegistry) -> None:
    with pytest.raises(UnknownSchema, match="registry id 99"):
        RegistryCodec(registry.url, Codec()).decode(b"\x00\x00\x00\x00\x63\x02")


def test_a_cut_registry_header_is_corrupt(registry: SchemaRegistry) -> None:
    with pytest.raises(CorruptPayload, match="truncated header"):
        RegistryCodec(registry.url, Codec()).decode(b"\x00\x00\x01")


def test_a_registry_that_does_not_answer_says_so(registry: SchemaRegistry) -> None:
    codec = RegistryCodec("http://127.0.0.1:9", Codec(), timeout_s=2)  # discard port: closed
    with pytest.raises(RegistryUnavailable, match="127.0.0.1:9"):
        codec.encode(_event())


@pytest.fixture()
def fresh_process_codec(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The process codec unchosen before and after the test, the settings read anew."""
    process.configure(None)
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    process.configure(None)
    get_settings.cache_clear()


def test_encode_and_decode_follow_the_environments_registry_url(
        registry: SchemaRegistry, fresh_process_codec: pytest.MonkeyPatch) -> None:
    fresh_process_codec.setenv("BEND_KAFKA__SCHEMA_REGISTRY_URL", registry.url)
    data = process.encode(_event())
    assert data[0] == 0 and list(registry.state.subjects) == ["bend.events.StepSucceeded"]
    assert process.decode(data) == _event()
    assert process.decode(Codec().encode(_event())) == _event()  # the other framing too


def test_configure_gives_the_process_the_codec_of_the_settings_it_runs_with(
        registry: SchemaRegistry, fresh_process_codec: pytest.MonkeyPatch) -> None:
    process.configure(Settings(kafka=KafkaSettings(schema_registry_url=registry.url)))
    framed = process.encode(_event())
    assert framed[0] == 0
    assert process.process_codec() is codec_for(
        Settings(kafka=KafkaSettings(schema_registry_url=registry.url)))  # one id cache
    process.configure(Settings())
    assert process.encode(_event())[:2] == MAGIC
    with pytest.raises(CorruptPayload, match="set BEND_KAFKA__SCHEMA_REGISTRY_URL"):
        process.decode(framed)


def test_without_a_registry_url_the_process_writes_single_object_data(
        fresh_process_codec: pytest.MonkeyPatch) -> None:
    fresh_process_codec.delenv("BEND_KAFKA__SCHEMA_REGISTRY_URL", raising=False)
    assert process.encode(_event())[:2] == MAGIC
    assert isinstance(process.process_codec(), Codec)


def test_a_registry_aware_client_reads_what_bend_writes(registry: SchemaRegistry) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    data = RegistryCodec(registry.url, Codec()).encode(_event())
    read = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    value = read(data, SerializationContext("bend.run-events", MessageField.VALUE))
    assert (value["envelope"]["run_id"], value["envelope"]["seq"], value["step_id"]) == (
        "r", 1, "s")


def test_a_primed_codec_encodes_and_decodes_its_own_records_without_the_registry(
        registry: SchemaRegistry) -> None:
    settings = Settings(kafka=KafkaSettings(schema_registry_url=f"{registry.url}/primed"))
    codec = RegistryCodec(registry.url, Codec())
    count = codec.prime()
    assert count == len(Codec().record_names()) and count == len(registry.state.subjects)
    registry.stop()  # from now on any HTTP call would fail
    data = codec.encode(_event())
    assert data[0] == 0
    assert RegistryCodec.decode(codec, data) == _event()
    # The process-wide helper logs, and does not raise, when the registry does not answer.
    process.prime_blocking(settings)


def test_an_unprimed_codec_needs_the_registry_on_first_use(registry: SchemaRegistry) -> None:
    codec = RegistryCodec(registry.url, Codec())
    registry.stop()
    with pytest.raises(RegistryUnavailable):
        codec.encode(_event())
