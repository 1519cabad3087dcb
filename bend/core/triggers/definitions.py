"""Trigger definitions (schedule, webhook, kafka, polling, manual), refused when created.

A definition is refused when it is created (`parse_trigger`), with every reason: a bad cron
field, an unknown time zone (with close names), a JMESPath expression that does not parse
(with the position), a window that is empty. JMESPath expressions are only compiled here;
the edges evaluate them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import fastavro
import jmespath
from fastavro.schema import SchemaParseException, UnknownType
from jmespath import exceptions as jmespath_errors
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic import field_validator, model_validator
from pydantic_core import PydanticCustomError

from bend.core.triggers.errors import InvalidTrigger
from bend.core.triggers.schedule_spec import ScheduleSpec

__all__ = [
    "Backoff", "CursorChange", "HashChange", "KafkaTrigger", "ManualTrigger", "PollingTrigger",
    "ScheduleTrigger", "TRIGGER_TYPES", "TriggerDefinition", "WebhookTrigger", "parse_schedule",
    "parse_trigger",
]

TRIGGER_TYPES: tuple[str, ...] = ("schedule", "webhook", "kafka", "polling", "manual")


def _compiles(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except jmespath_errors.EmptyExpressionError:
        raise PydanticCustomError(
            "jmespath", "the JMESPath expression is empty; give one (e.g. 'body') or leave it out"
        ) from None
    except jmespath_errors.ParseError as exc:  # LexerError and IncompleteExpressionError too
        if isinstance(exc, jmespath_errors.LexerError):
            reason = str(exc.message).lower()
        elif isinstance(exc, jmespath_errors.IncompleteExpressionError):
            reason = "it ends too early"
        else:
            reason = f"{exc.msg} {exc.token_value!r}"
        raise PydanticCustomError(
            "jmespath",
            "JMESPath {expression} does not parse at position {position}: {reason}; fix it "
            "(see https://jmespath.org/specification.html)",
            {"expression": repr(expression), "position": exc.lex_position, "reason": reason},
        ) from None
    return expression


def _pattern(regex: str, what: str, example: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError(
                "pattern", "{value} is not a valid {what}; use something like {example}",
                {"value": repr(value), "what": what, "example": repr(example)},
            )
        return value

    return AfterValidator(check)


JmesPath = Annotated[str, AfterValidator(_compiles)]
Slug = Annotated[str, _pattern(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", "path slug",
                               "orders-created")]
SecretName = Annotated[str, _pattern(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", "secret name",
                                     "GITHUB_WEBHOOK_SECRET")]
TopicName = Annotated[str, _pattern(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}", "Kafka topic name",
                                    "orders.created")]
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class _Definition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScheduleTrigger(_Definition):
    """Starts a run at each due time of `schedule`, with `input` as the run's input."""

    type: Literal["schedule"] = "schedule"
    schedule: ScheduleSpec
    input: Any = None


class WebhookTrigger(_Definition):
    """Starts a run per accepted HTTP request to /hooks/<path>."""

    type: Literal["webhook"] = "webhook"
    path: Slug
    secret_name: SecretName | None = None  # the NAME of the HMAC secret, never its value
    required_headers: dict[str, str | None] = {}  # name -> exact value, or None: must be present
    input_mapping: JmesPath | None = None  # over {headers, query, body}; None passes the body

    @field_validator("required_headers")
    @classmethod
    def _header_names(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        bad = [name for name in value if not _HEADER.fullmatch(name)]
        if bad:
            raise PydanticCustomError(
                "header_name", "{bad} are not HTTP header names; use names like 'X-Event-Type'",
                {"bad": ", ".join(repr(b) for b in bad)},
            )
        return {name.lower(): v for name, v in value.items()}  # HTTP names ignore case


def _avro_schema(value: Any) -> Any:
    if value is None:  # none given (a stored definition holds the null)
        return None
    try:
        fastavro.parse_schema(value)
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError,
            AttributeError) as exc:
        reason = (f"unknown type {exc.name!r}" if isinstance(exc, UnknownType)
                  else str(exc) or type(exc).__name__)
        raise PydanticCustomError(
            "avro_schema", "the Avro schema does not parse: {reason}; give a schema as JSON "
            "(see https://avro.apache.org/docs/current/specification/)",
            {"reason": reason},
        ) from None
    return value


def _http(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise PydanticCustomError(
            "url", "{value} is not an http(s) URL; give one like 'https://example.com/items'",
            {"value": repr(value)},
        )
    return value


AvroSchema = Annotated[Any, AfterValidator(_avro_schema)]
HttpUrl = Annotated[str, AfterValidator(_http)]


class KafkaTrigger(_Definition):
    """Starts a run per record on `topic` that passes `filter` (a truthy JMESPath result).

    Avro records are read in the Confluent wire format (the writer's schema from the registry:
    `schema_registry_url`, else the one Bend is configured with), in Avro single-object encoding
    (`avro_schema` must be that writer's schema, matched by fingerprint), or as bare Avro binary
    written with `avro_schema`. Given with a registry, `avro_schema` is the reader's schema.
    """

    type: Literal["kafka"] = "kafka"
    topic: TopicName
    format: Literal["json", "avro"] = "json"
    filter: JmesPath | None = None  # over the decoded value; None lets every record through
    input_mapping: JmesPath | None = None  # None passes the decoded value
    avro_schema: AvroSchema = None
    schema_registry_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _avro_only(self) -> KafkaTrigger:
        if self.format == "json" and (self.avro_schema is not None
                                      or self.schema_registry_url is not None):
            raise PydanticCustomError(
                "format", "avro_schema and schema_registry_url are for format 'avro'; set "
                "format: avro or leave them out", {})
        return self


class HashChange(_Definition):
    """A poll is new when the response body's hash differs from the last one."""

    mode: Literal["hash"] = "hash"


class CursorChange(_Definition):
    """A poll is new when the `cursor` field (JMESPath over the body) moved past the last one."""

    mode: Literal["cursor"] = "cursor"
    cursor: JmesPath


class Backoff(_Definition):
    """How long polling waits after failed polls: initial, times multiplier each, up to max."""

    initial_seconds: float = Field(default=1.0, gt=0)
    max_seconds: float = Field(default=300.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.initial_seconds > self.max_seconds:
            raise PydanticCustomError(
                "backoff", "backoff initial_seconds {i} exceeds max_seconds {m}; lower it",
                {"i": self.initial_seconds, "m": self.max_seconds},
            )
        return self


class PollingTrigger(_Definition):
    """Polls `url` every `interval_seconds` and starts a run when the response changed."""

    type: Literal["polling"] = "polling"
    url: str
    interval_seconds: int = Field(ge=1)
    change_detection: Annotated[HashChange | CursorChange, Field(discriminator="mode")] = (
        HashChange()
    )
    max_requests_per_minute: int | None = Field(default=None, ge=1)
    backoff: Backoff = Backoff()
    input_mapping: JmesPath | None = None  # over the response body; None passes the body

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http(value)


class ManualTrigger(_Definition):
    """Starts a run when a user asks (UI, API or bulk); `default_input` fills a missing input."""

    type: Literal["manual"] = "manual"
    default_input: Any = None


TriggerDefinition = Annotated[
    ScheduleTrigger | WebhookTrigger | KafkaTrigger | PollingTrigger | ManualTrigger,
    Field(discriminator="type"),
]
_TRIGGER: TypeAdapter[Any] = TypeAdapter(TriggerDefinition)


def _problems(exc: ValidationError, tag: object = None) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if tag is not None and loc[:1] == [str(tag)]:
            loc = loc[1:]  # the union's tag repeats the type the caller already gave
        message = error["msg"]
        if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
            message = f"give a type, one of {', '.join(TRIGGER_TYPES)}"
        problems.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return problems


def parse_trigger(data: Mapping[str, Any]) -> Any:
    """A `TriggerDefinition` from JSON-like data, or InvalidTrigger listing every problem."""
    try:
        return _TRIGGER.validate_python(data)
    except ValidationError as exc:
        tag = data.get("type") if isinstance(data, Mapping) else None
        raise InvalidTrigger(_problems(exc, tag)) from None


def parse_schedule(data: Mapping[str, Any]) -> ScheduleSpec:
    """A `ScheduleSpec` from JSON-like data, or InvalidTrigger listing every problem."""
    try:
        return ScheduleSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidTrigger(_problems(exc)) from None
