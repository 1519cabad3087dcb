"""The Kafka and polling trigger forms: fields to a definition, a stored one back to fields, and
the core's problems placed by field."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from bend.core.triggers import KafkaTrigger, PollingTrigger, parse_trigger
from bend.web.sourceform import SourceForm, blank, source_definition, source_form_from, \
    source_form_of


def _form(kind: str, **changes: str) -> SourceForm:
    return SourceForm(kind, {**blank(kind).values, **changes})


def _stored(definition: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = parse_trigger(definition).model_dump(mode="json")
    return stored


def test_a_filled_in_kafka_form_gives_a_trigger_the_core_accepts() -> None:
    definition, errors = source_definition(_form("kafka", topic=" orders.created ",
                                                 filter="kind == 'big'", input_mapping="order"))
    assert errors == {} and definition is not None
    trigger = parse_trigger(definition)
    assert isinstance(trigger, KafkaTrigger)
    assert (trigger.topic, trigger.filter, trigger.input_mapping, trigger.format) == (
        "orders.created", "kind == 'big'", "order", "json")


def test_each_kafka_problem_is_shown_next_to_its_own_field() -> None:
    definition, errors = source_definition(_form("kafka", topic="orders created",
                                                 filter="a[", schema_registry_url="x"))
    assert definition is None
    assert set(errors) == {"topic", "filter", "schema_registry_url"}
    assert "topic name" in errors["topic"]
    _, errors = source_definition(_form("kafka", topic="t", avro_schema="{"))
    assert set(errors) == {"avro_schema"} and "not JSON" in errors["avro_schema"]
    _, errors = source_definition(_form("kafka", topic="t",
                                        schema_registry_url="http://registry:8081"))
    assert set(errors) == {"format"}, errors  # a problem of the whole definition, said whole
    assert "avro_schema and schema_registry_url are for format 'avro'" in errors["format"]
    _, errors = source_definition(_form("kafka"))
    assert set(errors) == {"topic"}


def test_each_polling_problem_is_shown_next_to_its_own_field() -> None:
    definition, errors = source_definition(_form("polling", url="", interval_seconds="soon",
                                                 change_detection="cursor",
                                                 max_requests_per_minute="lots"))
    assert definition is None
    assert set(errors) == {"url", "interval_seconds", "cursor", "max_requests_per_minute"}
    _, errors = source_definition(_form("polling", url="ftp://x", interval_seconds="0",
                                        change_detection="cursor", cursor="a[["))
    assert set(errors) == {"url", "interval_seconds", "cursor"}, errors


def test_a_stored_trigger_comes_back_to_the_same_fields_and_its_other_fields_stay() -> None:
    stored = _stored({"type": "polling", "url": "https://example.com/items",
                      "interval_seconds": 90, "backoff": {"initial_seconds": 5},
                      "change_detection": {"mode": "cursor", "cursor": "items[0].id"}})
    form = source_form_from(stored)
    assert form.values["cursor"] == "items[0].id" and form.values["interval_seconds"] == "90"
    definition, errors = source_definition(SourceForm("polling", {**form.values,
                                                                  "interval_seconds": "30"}),
                                           stored)
    assert errors == {} and definition is not None
    trigger = parse_trigger(definition)
    assert isinstance(trigger, PollingTrigger)
    assert trigger.interval_seconds == 30 and trigger.backoff.initial_seconds == 5
    kafka = _stored({"type": "kafka", "topic": "t", "format": "avro",
                     "avro_schema": {"type": "string"}})
    again, errors = source_definition(source_form_from(kafka), kafka)
    assert errors == {} and again is not None and _stored(again) == kafka


def test_the_form_reads_only_its_kinds_fields() -> None:
    form = source_form_of("kafka", FormData([("topic", "t"), ("url", "u"), ("csrf_token", "x")]))
    assert form.values["topic"] == "t" and "url" not in form.values
