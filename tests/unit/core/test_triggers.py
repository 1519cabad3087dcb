"""Trigger definitions are refused with every reason; their state folds TriggerFired events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bend.core.events import TriggerFailed, TriggerFired
from bend.core.triggers.errors import InvalidTrigger, TriggerMismatch
from bend.core.triggers.schedules import ScheduleSpec, dedupe_key
from bend.core.triggers import (
    RECENT_KEYS, CursorChange, HashChange, KafkaTrigger, ManualTrigger, PollingTrigger,
    ScheduleTrigger, TriggerState, WebhookTrigger, apply, fold, initial_state, parse_trigger,
    record_error,
)

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
DAILY = ScheduleSpec(cron="0 9 * * *", grace_seconds=0)


def refused(data: dict) -> str:
    with pytest.raises(InvalidTrigger) as caught:
        parse_trigger(data)
    assert caught.value.code == "invalid_trigger"
    return " | ".join(caught.value.problems)


def fired(due_at: datetime | None, trigger_id: str = "nightly", key: str | None = None,
          occurred_at: datetime | None = None) -> TriggerFired:
    return TriggerFired(
        event_id=f"e-{due_at}-{key}", workflow_id="wf", occurred_at=occurred_at or due_at or T0,
        trigger_id=trigger_id, trigger_type="schedule", due_at=due_at,
        dedupe_key=key or dedupe_key(trigger_id, due_at or T0), input={"n": 1},
    )


# --- definitions -----------------------------------------------------------------------------


def test_each_trigger_type_parses_into_its_own_class() -> None:
    assert isinstance(parse_trigger({"type": "schedule", "schedule": {"cron": "@hourly"},
                                     "input": {"a": 1}}), ScheduleTrigger)
    assert isinstance(parse_trigger({"type": "webhook", "path": "orders"}), WebhookTrigger)
    assert isinstance(parse_trigger({"type": "kafka", "topic": "orders.created",
                                     "format": "avro", "filter": "total > `100`"}), KafkaTrigger)
    assert isinstance(parse_trigger({"type": "polling", "url": "https://api.example.com/x",
                                     "interval_seconds": 30}), PollingTrigger)
    assert isinstance(parse_trigger({"type": "manual"}), ManualTrigger)


def test_a_bad_cron_and_an_unknown_zone_in_a_schedule_trigger_are_both_reported() -> None:
    got = refused({"type": "schedule",
                   "schedule": {"cron": "0 25 * * *", "timezone": "Europe/Pari"}})
    assert "schedule.cron: cron field 2 (hour) '25'" in got
    assert "schedule.timezone: unknown time zone 'Europe/Pari'; did you mean 'Europe/Paris'" in got


def test_a_jmespath_filter_that_does_not_parse_is_refused_with_its_position() -> None:
    got = refused({"type": "kafka", "topic": "orders", "filter": "items[?price > `10`"})
    assert "filter: JMESPath 'items[?price > `10`' does not parse at position 19" in got


def test_a_jmespath_with_a_stray_token_names_the_token_and_its_position() -> None:
    got = refused({"type": "webhook", "path": "gh", "input_mapping": "body | | headers"})
    assert ("input_mapping: JMESPath 'body | | headers' does not parse at position 7: "
            "invalid token '|'") in got


def test_an_unclosed_quote_in_jmespath_is_refused_with_its_position() -> None:
    got = refused({"type": "polling", "url": "http://h/x", "interval_seconds": 5,
                   "change_detection": {"mode": "cursor", "cursor": "body.'id"}})
    assert "does not parse at position 5: unclosed ' delimiter" in got


def test_an_empty_jmespath_is_refused() -> None:
    assert "expression is empty" in refused({"type": "kafka", "topic": "t", "filter": ""})


def test_webhook_header_names_are_checked_and_kept_in_lower_case() -> None:
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": None}
    hook = parse_trigger({"type": "webhook", "path": "gh", "secret_name": "GITHUB_SECRET",
                          "required_headers": headers})
    assert hook.required_headers == {"x-github-event": "push", "x-hub-signature-256": None}
    assert "not HTTP header names" in refused({"type": "webhook", "path": "gh",
                                               "required_headers": {"X Event": None}})


def test_webhook_slugs_secret_names_and_kafka_topics_are_refused_with_an_example() -> None:
    got = refused({"type": "webhook", "path": "/Orders/", "secret_name": "s3cr3t value"})
    assert "path: '/Orders/' is not a valid path slug; use something like 'orders-created'" in got
    assert "secret_name: 's3cr3t value' is not a valid secret name" in got
    assert "'..' is not a valid Kafka topic name" in refused({"type": "kafka", "topic": ".."})


def test_polling_needs_an_http_url_a_positive_interval_and_an_ordered_backoff() -> None:
    got = refused({"type": "polling", "url": "file:///etc/passwd", "interval_seconds": 0,
                   "backoff": {"initial_seconds": 60, "max_seconds": 5}})
    assert "url: 'file:///etc/passwd' is not an http(s) URL" in got
    assert "interval_seconds: Input should be greater than or equal to 1" in got
    assert "backoff initial_seconds 60.0 exceeds max_seconds 5.0" in got


def test_polling_change_detection_is_by_hash_unless_a_cursor_is_given() -> None:
    hashed = parse_trigger({"type": "polling", "url": "https://h/x", "interval_seconds": 60})
    cursor = parse_trigger({"type": "polling", "url": "https://h/x", "interval_seconds": 60,
                            "change_detection": {"mode": "cursor", "cursor": "max(items[*].id)"}})
    assert isinstance(hashed.change_detection, HashChange)
    assert isinstance(cursor.change_detection, CursorChange)


def test_a_missing_or_unknown_type_is_refused_listing_the_types() -> None:
    for data in ({}, {"type": "email"}):
        assert "give a type, one of schedule, webhook, kafka, polling, manual" in refused(data)


def test_unknown_fields_are_refused_by_name() -> None:
    assert "schedule.cronn: Extra inputs are not permitted" in refused(
        {"type": "schedule", "schedule": {"cronn": "0 9 * * *"}})


def test_definitions_are_frozen() -> None:
    hook = parse_trigger({"type": "webhook", "path": "gh"})
    with pytest.raises(ValueError):
        hook.path = "other"


# --- state -----------------------------------------------------------------------------------


def test_a_new_schedule_trigger_knows_its_first_due_time_and_has_fired_nothing() -> None:
    state = initial_state("nightly", ScheduleTrigger(schedule=DAILY), T0 - timedelta(hours=1))
    assert state.next_due_at == T0 and state.fire_count == 0 and state.last_fired_at is None


def test_a_new_webhook_trigger_has_no_due_time() -> None:
    assert initial_state("gh", WebhookTrigger(path="gh"), T0).next_due_at is None


def test_a_firing_counts_and_moves_the_next_due_time_past_it() -> None:
    state = apply(TriggerState(trigger_id="nightly"), fired(T0), DAILY)
    assert state.fire_count == 1 and state.last_fired_at == T0 and state.last_due_at == T0
    assert state.next_due_at == T0 + timedelta(days=1)


def test_a_second_scheduler_recording_the_same_firing_changes_nothing() -> None:
    once = apply(TriggerState(trigger_id="nightly"), fired(T0), DAILY)
    again = fired(T0, occurred_at=T0 + timedelta(seconds=2))  # same dedupe key, other event id
    assert apply(once, again, DAILY) == once


def test_a_backfilled_past_firing_counts_but_does_not_move_the_due_times_back() -> None:
    state = fold("nightly", [fired(T0), fired(T0 - timedelta(days=30))], DAILY)
    assert state.fire_count == 2 and state.last_due_at == T0
    assert state.next_due_at == T0 + timedelta(days=1)


def test_applying_another_triggers_event_is_refused_as_a_routing_bug() -> None:
    with pytest.raises(TriggerMismatch, match="fold each trigger's events into its own state"):
        apply(TriggerState(trigger_id="nightly"), fired(T0, trigger_id="hourly"))


def test_an_event_trigger_firing_without_due_time_counts_and_keeps_no_next_due() -> None:
    state = fold("gh", [fired(None, trigger_id="gh", key="gh@delivery-1"),
                        fired(None, trigger_id="gh", key="gh@delivery-2")])
    assert state.fire_count == 2 and state.last_due_at is None and state.next_due_at is None


def test_errors_are_recorded_and_kept_across_later_firings() -> None:
    state = record_error(TriggerState(trigger_id="nightly"), "poll failed: HTTP 503", T0)
    state = apply(state, fired(T0 + timedelta(hours=1)))
    assert state.last_error == "poll failed: HTTP 503" and state.last_error_at == T0


def test_only_the_recent_dedupe_keys_are_remembered() -> None:
    events = [fired(T0 + timedelta(days=n)) for n in range(RECENT_KEYS + 5)]
    state = fold("nightly", events)
    assert len(state.recent_keys) == RECENT_KEYS and state.recent_keys[-1] == events[-1].dedupe_key


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=60))
def test_folding_firings_with_duplicates_counts_each_due_time_once(days: list[int]) -> None:
    state = fold("nightly", [fired(T0 + timedelta(days=d)) for d in days], DAILY)
    assert state.fire_count == len(set(days))
    if days:
        assert state.last_due_at == T0 + timedelta(days=max(days))
        assert state.next_due_at == T0 + timedelta(days=max(days) + 1)


def _failed(stage: str, error: str, at: datetime) -> TriggerFailed:
    return TriggerFailed(event_id=f"f-{at.isoformat()}", workflow_id="wf", occurred_at=at,
                         trigger_id="nightly", trigger_type="kafka", stage=stage, error=error)


def test_failures_count_and_the_latest_one_is_the_last_error() -> None:
    later = T0 + timedelta(minutes=5)
    state = fold("nightly", [_failed("decode", "not JSON", later),
                             _failed("poll", "HTTP 503", T0)])
    assert state.error_count == 2
    assert state.last_error == "decode: not JSON" and state.last_error_at == later
    assert state.fire_count == 0


def test_an_avro_kafka_trigger_checks_its_schema_and_reads_back_as_stored() -> None:
    schema = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "int"}]}
    trigger = parse_trigger({"type": "kafka", "topic": "orders", "format": "avro",
                             "avro_schema": schema})
    assert parse_trigger(trigger.model_dump(mode="json")) == trigger
    plain = parse_trigger({"type": "kafka", "topic": "orders"})
    assert parse_trigger(plain.model_dump(mode="json")) == plain
    with pytest.raises(InvalidTrigger, match="unknown type 'nope'"):
        parse_trigger({"type": "kafka", "topic": "orders", "format": "avro",
                       "avro_schema": {**schema, "fields": [{"name": "id", "type": "nope"}]}})
    with pytest.raises(InvalidTrigger, match="are for format 'avro'"):
        parse_trigger({"type": "kafka", "topic": "orders", "avro_schema": schema})
