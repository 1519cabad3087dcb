"""A webhook delivery as a run input: required headers checked, the request as a document
({headers, query, body}) and the trigger's JMESPath mapping over it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors

from bend.services.errors import ApiError
from bend.core.depth import MAX_DEPTH, deeper_than
from bend.core.triggers import WebhookTrigger
from bend.security.errors import MissingHeader, WebhookError
from bend.security.webhooks import SIGNATURE_HEADER

__all__ = [
    "UnmappableDelivery", "UnreadableDelivery", "WrongHeader", "check_headers", "document",
    "run_input",
]

# Credentials never reach a run's input (which is kept in the log for good).
_HIDDEN = frozenset({SIGNATURE_HEADER.lower(), "authorization", "cookie", "x-api-key",
                     "proxy-authorization"})
_JSON_TYPES = ("application/json", "application/problem+json")


class WrongHeader(WebhookError):
    """A header the hook requires has another value."""

    status = 400

    def __init__(self, header: str, expected: str) -> None:
        super().__init__(f"webhook request's {header} header must be {expected!r}; this hook "
                         "takes only such deliveries")
        self.header = header


class UnreadableDelivery(ApiError):
    """The delivery's body is not what its Content-Type says, or not text."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(f"the webhook body cannot be read ({reason}); send JSON with "
                         "Content-Type: application/json, or UTF-8 text")
        self.reason = reason


class UnmappableDelivery(ApiError):
    """The trigger's input mapping failed on this delivery."""

    status = 422

    def __init__(self, mapping: str, reason: str) -> None:
        super().__init__(f"the trigger's input_mapping {mapping!r} failed on this delivery "
                         f"({reason}); fix the mapping (PUT /api/triggers/{{trigger_id}}) or "
                         "the payload")
        self.mapping = mapping


def check_headers(hook: WebhookTrigger, headers: Mapping[str, str]) -> None:
    """Raise MissingHeader or WrongHeader (400) unless every required header is as asked."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, expected in hook.required_headers.items():
        value = lowered.get(name)
        if not value:
            raise MissingHeader(name)
        if expected is not None and value != expected:
            raise WrongHeader(name, expected)


def _body(raw: bytes, content_type: str) -> Any:
    media = content_type.split(";")[0].strip().lower()
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableDelivery("it is not UTF-8") from None
    if media in _JSON_TYPES or media.endswith("+json"):
        try:
            body = json.loads(text)
        except RecursionError:
            raise UnreadableDelivery(f"it nests more than {MAX_DEPTH} levels deep") from None
        except json.JSONDecodeError as err:
            raise UnreadableDelivery(f"not valid JSON: {err.msg} at line {err.lineno}, "
                                     f"column {err.colno}") from None
        if deeper_than(body):
            raise UnreadableDelivery(f"it nests more than {MAX_DEPTH} levels deep")
        return body
    return text


def document(headers: Mapping[str, str], query: Mapping[str, str], raw: bytes) -> dict[str, Any]:
    """The delivery as the mapping sees it: lower-case headers (no credentials), the query
    parameters and the body (JSON when its Content-Type says so, else text)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return {"headers": {k: v for k, v in lowered.items() if k not in _HIDDEN},
            "query": dict(query), "body": _body(raw, lowered.get("content-type", ""))}


def run_input(hook: WebhookTrigger, doc: dict[str, Any]) -> Any:
    """The run's input: the mapping's result over `doc`, or the body without a mapping."""
    if hook.input_mapping is None:
        return doc["body"]
    try:
        return jmespath.search(hook.input_mapping, doc)
    except jmespath_errors.JMESPathError as err:
        raise UnmappableDelivery(hook.input_mapping, str(err)) from None
