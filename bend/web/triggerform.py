"""The trigger forms: a cron schedule's fields to a definition, a webhook's, a definition typed
as JSON or YAML, and the core's problems placed next to the field each is about."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from starlette.datastructures import FormData

from bend.core.triggers import parse_trigger
from bend.core.triggers.errors import InvalidTrigger
from bend.core.triggers.schedule_spec import DAYS, MissedPolicy

__all__ = [
    "CRON_FIELDS", "CronForm", "DAYS", "MISSED_POLICIES", "cron_definition", "cron_form_of",
    "cron_form_from", "place", "typed_definition", "webhook_definition", "webhook_secret_name",
]

CRON_FIELDS = ("cron", "timezone", "missed_policy", "max_catch_up", "window_start",
               "window_end", "input")
MISSED_POLICIES = tuple(p.value for p in MissedPolicy)

# Where a problem's location (`schedule.window.start`) is shown; the longest prefix wins.
_FIELD_OF = {"schedule.cron": "cron", "schedule.timezone": "timezone",
             "schedule.missed_policy": "missed_policy", "schedule.max_catch_up": "max_catch_up",
             "schedule.window.days": "window_days", "schedule.window.start": "window_start",
             "schedule.window.end": "window_end", "schedule.window": "window_start",
             "input": "input", "path": "path", "input_mapping": "input_mapping"}


@dataclass(frozen=True, slots=True)
class CronForm:
    """A cron trigger's form as typed (or as stored), and the problems by field."""

    values: Mapping[str, str]
    days: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)


def cron_form_of(form: FormData) -> CronForm:
    """The cron form's fields as sent."""
    values = {name: str(form.get(name) or "") for name in CRON_FIELDS}
    days = tuple(d for d in DAYS if d in form.getlist("window_days"))
    return CronForm(values, days)


def cron_form_from(definition: Mapping[str, Any]) -> CronForm:
    """The form filled in from a stored schedule trigger's definition."""
    spec = definition.get("schedule") or {}
    window = spec.get("window") or {}
    given = definition.get("input")
    values = {"cron": spec.get("cron") or "", "timezone": spec.get("timezone") or "UTC",
              "missed_policy": spec.get("missed_policy") or "skip",
              "max_catch_up": str(spec.get("max_catch_up") or 10),
              "window_start": str(window.get("start") or "")[:5],
              "window_end": str(window.get("end") or "")[:5],
              "input": "" if given is None else json.dumps(given, indent=2)}
    return CronForm(values, tuple(window.get("days") or ()) if window else ())


def place(problems: tuple[str, ...], default: str,
          field_of: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each problem (`location: message`) under the field it is about (`field_of` maps a
    location to its field; the cron and webhook forms' by default), else under `default`."""
    field_of = _FIELD_OF if field_of is None else field_of
    placed: dict[str, str] = {}
    for problem in problems:
        where, _, message = problem.partition(": ")
        if not message or " " in where:  # no location: a problem of the whole definition
            where, message = "", problem
        spot = max((loc for loc in field_of if where == loc or where.startswith(loc + ".")),
                   key=len, default=None)
        name = field_of[spot] if spot else default
        placed[name] = f"{placed[name]}; {message}" if name in placed else message
    return placed


def cron_definition(typed: CronForm, base: Mapping[str, Any] | None = None
                    ) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The schedule trigger the form spells (over `base`, a stored definition being edited,
    whose other schedule fields stay), or None and the problems by field."""
    v, errors = typed.values, {}
    schedule: dict[str, Any] = dict((base or {}).get("schedule") or {})
    schedule.pop("interval_seconds", None)
    schedule.update(cron=v["cron"].strip(), timezone=v["timezone"].strip() or "UTC",
                    missed_policy=v["missed_policy"] or "skip")
    if not schedule["cron"]:
        errors["cron"] = "enter a cron expression, e.g. '0 9 * * 1-5' or '@daily'"
    try:
        schedule["max_catch_up"] = int(v["max_catch_up"] or "10")
    except ValueError:
        errors["max_catch_up"] = "enter a whole number of runs, e.g. 10"
    start, end = v["window_start"].strip(), v["window_end"].strip()
    schedule.pop("window", None)
    if start or end:
        if not (start and end):
            errors["window_start" if not start else "window_end"] = (
                "give both the window's start and end (HH:MM), or neither")
        else:
            schedule["window"] = {"start": start, "end": end, "days": list(typed.days or DAYS)}
    definition: dict[str, Any] = {"type": "schedule", "schedule": schedule}
    if v["input"].strip():
        try:
            definition["input"] = json.loads(v["input"])
        except json.JSONDecodeError as err:
            errors["input"] = f"the input is not JSON: {err.msg} at line {err.lineno}"
    if errors:
        return None, errors
    try:
        parse_trigger(definition)
    except InvalidTrigger as err:
        return None, place(err.problems, "cron")
    return definition, {}


_SLUG_CHARS = re.compile(r"[^A-Za-z0-9]+")


def webhook_definition(path: str, input_mapping: str, secret_name: str
                       ) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The webhook trigger the form spells, or None and the problems by field."""
    definition: dict[str, Any] = {"type": "webhook", "path": path, "secret_name": secret_name}
    if input_mapping:
        definition["input_mapping"] = input_mapping
    if not path:
        return None, {"path": "enter a path, e.g. 'orders-created'"}
    try:
        parse_trigger(definition)
    except InvalidTrigger as err:
        return None, place(err.problems, "path")
    return definition, {}


def webhook_secret_name(path: str, suffix: str) -> str:
    """The name a webhook's generated signing secret is stored under."""
    return f"WEBHOOK_{_SLUG_CHARS.sub('_', path).upper()}_{suffix}"


def typed_definition(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """A definition typed as JSON or YAML, or None and what is wrong with the text."""
    if not text.strip():
        return None, "enter a trigger definition with its type, e.g. {\"type\": \"kafka\", ...}"
    try:
        data = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        return None, f"the definition is neither JSON nor YAML{at}: {err}"
    if not isinstance(data, dict):
        return None, "the definition must be a mapping with a `type` (kafka, polling, ...)"
    return data, None
