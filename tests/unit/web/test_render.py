"""How pages show values (masked, cut with the whole kept) and small parsing rules."""

from __future__ import annotations

import json

import pytest

from bend.contracts.codec import encode
from bend.core.commands import CancelRun
from bend.security.redact import Redactor
from bend.web.errors import BadForm
from bend.web.render import duration, show, unmask
from bend.web.routes.dead_letters import readable
from bend.web.routes.runs import parse_time
from bend.web.session import csrf_token, safe_next


def test_secret_values_and_secret_keys_are_masked() -> None:
    shown = show({"note": "key is abc123xyz", "nested": {"Authorization": "Bearer t",
                                                         "password": "p"}, "n": 1},
                 Redactor(["abc123xyz"]))
    data = json.loads(shown.whole)
    assert data == {"note": "key is ***", "nested": {"Authorization": "***", "password": "***"},
                    "n": 1}


def test_a_long_value_is_previewed_short_and_kept_whole() -> None:
    value = {"text": "word " * 500}
    shown = show(value)
    assert shown.cut and len(shown.preview) <= 281 and shown.preview.endswith("…")
    assert json.loads(shown.whole) == value and shown.size == len(shown.whole)
    small = show({"a": 1})
    assert not small.cut and small.preview == small.whole


def test_durations_read_like_people_write_them() -> None:
    assert [duration(x) for x in (None, 850, 1234, 65_000, 7_300_000)] == \
        ["", "850 ms", "1.2 s", "1 min 5 s", "2 h 1 min"]


def test_filter_times_are_utc_unless_they_say_otherwise() -> None:
    assert parse_time("2025-01-31T14:00", "since").isoformat() == "2025-01-31T14:00:00+00:00"
    assert parse_time("2025-01-31T14:00:00+02:00", "since").utcoffset().total_seconds() == 7200
    assert parse_time("", "since") is None
    with pytest.raises(BadForm, match="since"):
        parse_time("yesterday", "since")


def test_csrf_tokens_are_bound_to_the_session_and_next_stays_in_the_ui() -> None:
    assert csrf_token("a") == csrf_token("a") != csrf_token("b")
    assert safe_next("/ui/runs/x?y=1") == "/ui/runs/x?y=1"
    for bad in ("https://evil.example/", "//evil.example/ui/", "/api/keys", None, "/ui\\..",
                "javascript:alert(1)"):
        assert safe_next(bad) == "/ui/runs"


def test_dead_letter_bytes_are_decoded_as_records_json_text_or_base64() -> None:
    from datetime import datetime, timezone
    cmd = CancelRun(event_id="e1", run_id="r1", workflow_id="w", workflow_version=1,
                    occurred_at=datetime(2025, 1, 1, tzinfo=timezone.utc), reason="x")
    kind, body = readable(encode(cmd))
    assert kind == "record" and body["run_id"] == "r1"
    assert readable(b'{"a": 1}') == ("json", {"a": 1})
    assert readable(b"plain") == ("text", "plain")
    assert readable(b"\xff\xfe\x00") [0] == "base64"
    assert readable(None) == ("empty", "")


def test_an_edited_masked_input_gets_its_secrets_back_and_keeps_the_edits() -> None:
    redactor = Redactor(["tok-123"])
    original = {"topic": "a", "password": "hunter2", "note": "uses tok-123", "list": [1, "tok-123"]}
    shown = json.loads(show(original, redactor).whole)
    assert shown == {"topic": "a", "password": "***", "note": "uses ***", "list": [1, "***"]}
    assert unmask(shown, original, redactor) == original
    edited = {**shown, "topic": "b", "extra": True}
    assert unmask(edited, original, redactor) == {**original, "topic": "b", "extra": True}
    assert unmask({**shown, "password": "new"}, original, redactor)["password"] == "new"
