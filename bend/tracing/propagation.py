"""W3C trace context (`traceparent`, `tracestate`) on Kafka record headers and HTTP headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["KafkaHeaders", "extract_kafka", "inject_http", "inject_kafka"]

KafkaHeaders = Sequence[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
_FIELDS = frozenset(_PROPAGATOR.fields)  # traceparent, tracestate


class _KafkaGetter(Getter[KafkaHeaders]):
    """Reads a header's values from aiokafka's list of (name, bytes) pairs."""

    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        key = key.lower()
        values = [_text(v) for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _KafkaGetter()


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def inject_kafka(context: Context | None = None) -> list[tuple[str, bytes]]:
    """`traceparent` (and `tracestate`) of `context` (default: the current one) as record headers.

    Empty when the context holds no valid span.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return [(k, v.encode("ascii")) for k, v in carrier.items()]


def extract_kafka(headers: Iterable[tuple[str, bytes]] | None,
                  context: Context | None = None) -> Context:
    """The context a record's headers carry, on top of `context` (unchanged if they carry none)."""
    pairs = [(k, v) for k, v in (headers or ()) if k.lower() in _FIELDS]
    if not pairs:
        return context if context is not None else Context()
    return _PROPAGATOR.extract(pairs, context=context, getter=_GETTER)


def inject_http(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """`headers` with `traceparent`/`tracestate` of `context` (default: the current one) added.

    A header the caller set itself is kept: a step that names its own traceparent wins.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    if not carrier:
        return headers
    present = {k.lower() for k in headers}
    return {**headers, **{k: v for k, v in carrier.items() if k not in present}}
