"""What a poll's response counts as: its marker, and the last marker read back from a firing."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx

from bend.core.events import TriggerFired
from bend.core.triggers import PollingTrigger, TriggerState
from streams.triggers.book import Trigger
from streams.triggers.polling import last_marker, marker

URL = "http://127.0.0.1:9/items"


def _response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"},
                          request=httpx.Request("GET", URL))


def test_the_hash_marker_changes_with_the_body_only() -> None:
    spec = PollingTrigger(url=URL, interval_seconds=1)
    assert marker(spec, _response(b'{"a": 1}')) == marker(spec, _response(b'{"a": 1}'))
    assert marker(spec, _response(b'{"a": 1}')) != marker(spec, _response(b'{"a": 2}'))


def test_the_cursor_marker_ignores_the_rest_of_the_body() -> None:
    spec = PollingTrigger(url=URL, interval_seconds=1,
                          change_detection={"mode": "cursor", "cursor": "next"})
    first = marker(spec, _response(b'{"next": "c1", "noise": 1}'))
    assert first == marker(spec, _response(b'{"next": "c1", "noise": 2}'))
    assert first != marker(spec, _response(b'{"next": "c2", "noise": 2}'))
    assert marker(spec, _response(b'{"noise": 2}')) is None


def test_the_last_marker_is_read_back_from_the_latest_firing() -> None:
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    trigger = Trigger("tr:1", "polling", "wf", "default", "default",
                      PollingTrigger(url=URL, interval_seconds=1), True, now,
                      TriggerState(trigger_id="tr:1"))
    assert last_marker(trigger) is None
    trigger.last_fired = TriggerFired(event_id="e", workflow_id="wf", occurred_at=now,
                                      trigger_id="tr:1", trigger_type="polling",
                                      dedupe_key="tr:1#3:abc:def")
    assert last_marker(trigger) == "abc:def"


def test_a_json_answer_cut_short_is_a_failed_poll_not_new_content() -> None:
    import httpx
    import pytest

    from streams.triggers.polling import UnreadableBody, _body

    request = httpx.Request("GET", "http://feed.test/items")
    cut = httpx.Response(200, content=b'{"items": [1, ', request=request,
                         headers={"Content-Type": "application/json"})
    with pytest.raises(UnreadableBody, match="does not parse"):
        _body(cut)
    text = httpx.Response(200, content=b"plain words", request=request,
                          headers={"Content-Type": "text/plain"})
    assert _body(text) == "plain words"
    whole = httpx.Response(200, content=b'{"items": [1]}', request=request,
                           headers={"Content-Type": "application/problem+json"})
    assert _body(whole) == {"items": [1]}
