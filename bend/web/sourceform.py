"""The Kafka and polling trigger forms: their fields to a definition (over the stored one being
edited, whose other fields stay), a stored definition back to fields, and the core's problems
placed next to the field each is about."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from bend.core.triggers import parse_trigger
from bend.core.triggers.errors import InvalidTrigger
from bend.web.triggerform import place

__all__ = ["FIELDS", "SOURCE_KINDS", "SourceForm", "blank", "placed", "source_definition",
           "source_form_from", "source_form_of"]

SOURCE_KINDS = ("kafka", "polling")
FIELDS: dict[str, tuple[str, ...]] = {
    "kafka": ("topic", "format", "filter", "input_mapping", "avro_schema",
              "schema_registry_url"),
    "polling": ("url", "interval_seconds", "change_detection", "cursor",
                "max_requests_per_minute", "input_mapping"),
}
# Where a problem's location is shown (the longest prefix wins); a problem of the whole
# definition (avro fields with format json; a bad URL) goes by the _WHOLE field.
_WHOLE = {"kafka": "format", "polling": "url"}
_FIELD_OF: dict[str, dict[str, str]] = {
    "kafka": {f: f for f in FIELDS["kafka"]},
    "polling": {"url": "url", "interval_seconds": "interval_seconds",
                "change_detection": "change_detection", "change_detection.cursor": "cursor",
                "max_requests_per_minute": "max_requests_per_minute",
                "input_mapping": "input_mapping", "backoff": "interval_seconds"},
}
_BLANK: dict[str, dict[str, str]] = {
    "kafka": {"format": "json"}, "polling": {"interval_seconds": "60",
                                             "change_detection": "hash"}}


@dataclass(frozen=True, slots=True)
class SourceForm:
    """A Kafka or polling trigger's form as typed (or as stored), and the problems by field."""

    kind: str
    values: Mapping[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def blank(kind: str) -> SourceForm:
    """The empty form of `kind`, with its defaults."""
    return SourceForm(kind, {name: _BLANK[kind].get(name, "") for name in FIELDS[kind]})



def source_form_of(kind: str, form: FormData) -> SourceForm:
    """The `kind` form's fields as sent."""
    return SourceForm(kind, {name: str(form.get(name) or "") for name in FIELDS[kind]})


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=2)


def source_form_from(definition: Mapping[str, Any]) -> SourceForm:
    """The form filled in from a stored Kafka or polling trigger's definition."""
    kind = str(definition.get("type"))
    values = {name: _text(definition.get(name)) for name in FIELDS[kind]}
    if kind == "kafka":
        values["format"] = values["format"] or "json"
    else:
        detection = definition.get("change_detection") or {}
        values["change_detection"] = str(detection.get("mode") or "hash")
        values["cursor"] = str(detection.get("cursor") or "")
    return SourceForm(kind, values)


def _whole(text: str, name: str, what: str, errors: dict[str, str]) -> int | None:
    try:
        return int(text)
    except ValueError:
        errors[name] = f"enter a whole number of {what}, e.g. 60"
        return None


def _kafka(v: Mapping[str, str], definition: dict[str, Any], errors: dict[str, str]) -> None:
    definition.update(topic=v["topic"].strip(), format=v["format"] or "json")
    if not definition["topic"]:
        errors["topic"] = "enter the topic to read, e.g. 'orders.created'"
    schema = v["avro_schema"].strip()
    if schema:
        try:
            definition["avro_schema"] = json.loads(schema)
        except json.JSONDecodeError as err:
            errors["avro_schema"] = (f"the Avro schema is not JSON: {err.msg} at line "
                                     f"{err.lineno}")
    for name in ("filter", "input_mapping", "schema_registry_url"):
        definition[name] = v[name].strip() or None
    if not schema:
        definition["avro_schema"] = None


def _polling(v: Mapping[str, str], definition: dict[str, Any], errors: dict[str, str]) -> None:
    definition["url"] = v["url"].strip()
    if not definition["url"]:
        errors["url"] = "enter the URL to poll, e.g. 'https://example.com/items'"
    interval = v["interval_seconds"].strip()
    if not interval:
        errors["interval_seconds"] = "enter how often to poll, in seconds, e.g. 60"
    else:
        definition["interval_seconds"] = _whole(interval, "interval_seconds", "seconds", errors)
    limit = v["max_requests_per_minute"].strip()
    definition["max_requests_per_minute"] = (
        _whole(limit, "max_requests_per_minute", "requests", errors) if limit else None)
    mode, cursor = v["change_detection"] or "hash", v["cursor"].strip()
    if mode == "cursor":
        definition["change_detection"] = {"mode": "cursor", "cursor": cursor}
        if not cursor:
            errors["cursor"] = "enter the JMESPath of the cursor in the body, e.g. 'items[0].id'"
    else:
        definition["change_detection"] = {"mode": mode}
    definition["input_mapping"] = v["input_mapping"].strip() or None


def source_definition(typed: SourceForm, base: Mapping[str, Any] | None = None
                      ) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The trigger the form spells (over `base`, a stored definition being edited), or None
    and the problems by field."""
    definition: dict[str, Any] = {**(base or {}), "type": typed.kind}
    errors: dict[str, str] = {}
    (_kafka if typed.kind == "kafka" else _polling)(typed.values, definition, errors)
    if errors:
        return None, errors
    try:
        parse_trigger(definition)
    except InvalidTrigger as err:
        return None, placed(typed.kind, err.problems)
    return definition, {}


def placed(kind: str, problems: tuple[str, ...]) -> dict[str, str]:
    """Each of the core's problems under the `kind` form's field it is about."""
    return place(problems, _WHOLE[kind], _FIELD_OF[kind])

