"""A webhook delivery as a run input: credentials never reach it, bodies are read by their
Content-Type, required headers and the mapping refuse with typed errors."""

from __future__ import annotations

import pytest

from bend.services.webhook_input import (
    UnmappableDelivery, UnreadableDelivery, WrongHeader, check_headers, document, run_input,
)
from bend.core.triggers import parse_trigger
from bend.security.errors import MissingHeader

HOOK = parse_trigger({"type": "webhook", "path": "orders", "secret_name": "S",
                      "required_headers": {"X-Event": "created", "X-Id": None},
                      "input_mapping": "{id: body.id, event: headers.\"x-event\", q: query.q}"})


def test_the_document_hides_credentials_and_lowers_header_names() -> None:
    doc = document({"Authorization": "Bearer x", "X-Bend-Signature": "t=1,v1=ab",
                    "Cookie": "c", "X-Api-Key": "k", "X-Event": "created",
                    "Content-Type": "application/json"}, {"q": "1"}, b'{"id": 7}')
    assert doc == {"headers": {"x-event": "created", "content-type": "application/json"},
                   "query": {"q": "1"}, "body": {"id": 7}}


def test_bodies_are_json_only_when_their_type_says_so() -> None:
    assert document({"content-type": "text/plain"}, {}, b'{"id": 7}')["body"] == '{"id": 7}'
    assert document({"content-type": "application/vnd.x+json"}, {}, b"[1]")["body"] == [1]
    assert document({}, {}, b"")["body"] is None
    with pytest.raises(UnreadableDelivery):
        document({"content-type": "application/json"}, {}, b"{nope")
    with pytest.raises(UnreadableDelivery):
        document({}, {}, b"\xff\xfe")


def test_the_mapping_builds_the_input_and_no_mapping_passes_the_body() -> None:
    doc = document({"X-Event": "created", "Content-Type": "application/json"}, {"q": "a"},
                   b'{"id": 7}')
    assert run_input(HOOK, doc) == {"id": 7, "event": "created", "q": "a"}
    plain = parse_trigger({"type": "webhook", "path": "p", "secret_name": "S"})
    assert run_input(plain, doc) == {"id": 7}


def test_a_mapping_that_fails_on_the_payload_is_unmappable() -> None:
    hook = parse_trigger({"type": "webhook", "path": "p", "secret_name": "S",
                          "input_mapping": "abs(body)"})
    with pytest.raises(UnmappableDelivery):
        run_input(hook, document({}, {}, b"text"))


def test_required_headers_must_be_present_and_equal_when_a_value_is_given() -> None:
    check_headers(HOOK, {"x-event": "created", "X-ID": "1"})
    with pytest.raises(MissingHeader):
        check_headers(HOOK, {"x-event": "created"})
    with pytest.raises(WrongHeader):
        check_headers(HOOK, {"x-event": "deleted", "x-id": "1"})
