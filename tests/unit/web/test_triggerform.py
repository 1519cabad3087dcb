"""The trigger forms: typed fields to a definition, and the core's problems placed by field."""

from __future__ import annotations

from starlette.datastructures import FormData

from bend.core.triggers import ScheduleTrigger, parse_trigger
from bend.web.triggerform import (
    CronForm, cron_definition, cron_form_from, cron_form_of, place, typed_definition,
    webhook_definition, webhook_secret_name,
)

BASE = {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "missed_policy": "run_once",
        "max_catch_up": "10", "window_start": "", "window_end": "", "input": ""}


def _form(**changes: str) -> CronForm:
    return CronForm({**BASE, **changes})


def test_a_filled_in_cron_form_gives_a_schedule_trigger_the_core_accepts() -> None:
    definition, errors = cron_definition(_form(input='{"k": 1}', window_start="08:00",
                                               window_end="18:00"))
    assert errors == {}
    assert definition is not None
    trigger = parse_trigger(definition)
    assert isinstance(trigger, ScheduleTrigger)
    assert trigger.schedule.timezone == "Europe/Paris"
    assert trigger.schedule.missed_policy.value == "run_once"
    assert trigger.schedule.window is not None and len(trigger.schedule.window.days) == 7
    assert trigger.input == {"k": 1}


def test_each_problem_is_shown_next_to_its_own_field() -> None:
    definition, errors = cron_definition(_form(cron="61 * * * *", timezone="Europe/Pariss",
                                               max_catch_up="many", input="{"))
    assert definition is None
    assert set(errors) == {"max_catch_up", "input"}  # the form's own checks come first
    definition, errors = cron_definition(_form(cron="61 * * * *", timezone="Europe/Pariss"))
    assert definition is None
    assert set(errors) == {"cron", "timezone"}
    assert "Europe/Paris" in errors["timezone"]  # the core's suggestion


def test_an_empty_expression_and_half_a_window_are_refused() -> None:
    _, errors = cron_definition(_form(cron="", window_start="09:00"))
    assert set(errors) == {"cron", "window_end"}


def test_a_window_the_cron_never_fires_in_is_refused_at_the_expression() -> None:
    _, errors = cron_definition(_form(cron="0 3 * * *", window_start="09:00",
                                      window_end="17:00"))
    assert "never fires" in errors["cron"]


def test_editing_keeps_the_stored_schedules_other_fields() -> None:
    stored = {"type": "schedule", "schedule": {"cron": "0 8 * * *", "timezone": "UTC",
                                                "grace_seconds": 5, "window": {
                                                    "days": ["mon"], "start": "07:00:00",
                                                    "end": "09:00:00"}}}
    form = cron_form_from(stored)
    assert form.values["window_start"] == "07:00" and form.days == ("mon",)
    definition, errors = cron_definition(form, stored)
    assert errors == {} and definition is not None
    assert definition["schedule"]["grace_seconds"] == 5


def test_the_sent_form_keeps_only_known_days_in_week_order() -> None:
    sent = FormData([("cron", "@daily"), ("window_days", "fri"), ("window_days", "mon"),
                     ("window_days", "someday")])
    assert cron_form_of(sent).days == ("mon", "fri")


def test_a_webhook_path_that_is_not_a_slug_is_refused_at_the_path() -> None:
    name = webhook_secret_name("Orders Hook", "AB12")
    assert name == "WEBHOOK_ORDERS_HOOK_AB12"
    definition, errors = webhook_definition("Orders Hook", "", name)
    assert definition is None and set(errors) == {"path"}
    definition, errors = webhook_definition("orders", "body.order", name)
    assert errors == {} and definition is not None


def test_a_definition_is_read_as_yaml_or_json() -> None:
    assert typed_definition('{"type": "kafka", "topic": "t"}') == ({"type": "kafka",
                                                                    "topic": "t"}, None)
    assert typed_definition("type: kafka\ntopic: t\n")[0] == {"type": "kafka", "topic": "t"}
    assert typed_definition("- a")[1] is not None
    assert typed_definition("a: [")[1] is not None


def test_problems_without_a_known_location_go_to_the_default_field() -> None:
    assert place(("schedule: something", "odd"), "cron") == {"cron": "something; odd"}
