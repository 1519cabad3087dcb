"""The process's tracer: installed only when an OTLP endpoint is set (or a test gives an exporter).

Bend keeps its own `TracerProvider` (not the global one), so a test can install and drop one
per case; `current()` is None while tracing is off and every helper then returns at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision, ParentBased, Sampler, SamplingResult, _get_parent_trace_state,
)
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.util.types import Attributes

from bend import __version__
from bend.settings import Settings
from bend.tracing.ids import is_sampled, run_trace_id

__all__ = ["Tracing", "configure_tracing", "current", "pinned_ids", "shutdown_tracing",
           "traces_url"]

log = structlog.get_logger(__name__)

_PINNED: ContextVar[tuple[int, int] | None] = ContextVar("bend_tracing_pinned", default=None)


class _PinnedIds(IdGenerator):
    """Random ids, except for a span started under `pinned_ids` (a run's or a step's span)."""

    _random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        pinned = _PINNED.get()
        return pinned[1] if pinned else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        pinned = _PINNED.get()
        return pinned[0] if pinned else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return False  # a run's trace id is derived from its run id (bend.tracing.ids)


@contextlib.contextmanager
def pinned_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """Spans started inside get these ids (the trace id only applies to a root span)."""
    token = _PINNED.set((trace_id, span_id))
    try:
        yield
    finally:
        _PINNED.reset(token)


class _RunRatio(Sampler):
    """Keeps a root span when the hash of its trace id falls under the ratio (ids.is_sampled)."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: object = None) -> SamplingResult:
        keep = is_sampled(trace_id, self.ratio)
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP,
                              attributes if keep else None,
                              _get_parent_trace_state(parent_context))

    def get_description(self) -> str:
        return f"BendRunRatio{{{self.ratio}}}"


@dataclass(frozen=True, slots=True)
class Tracing:
    """The installed provider, its tracer and the sampling ratio of runs."""

    provider: TracerProvider
    tracer: Tracer
    ratio: float

    def keeps(self, run_id: str) -> bool:
        """Whether the run is sampled: an unsampled run gets no span and no header at all."""
        return self.ratio >= 1.0 or is_sampled(run_trace_id(run_id), self.ratio)


_current: Tracing | None = None


def current() -> Tracing | None:
    """The process's tracing, or None when it is off."""
    return _current


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (`http://host:4318`)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def configure_tracing(settings: Settings, role: str, *, exporter: SpanExporter | None = None,
                      processor: SpanProcessor | None = None) -> bool:
    """Install tracing for this process if `BEND_TRACING__OTLP_ENDPOINT` is set; whether it did.

    `exporter` (sent span by span) or `processor` replace the OTLP export: tests use them.
    """
    global _current
    conf = settings.tracing
    if exporter is None and processor is None and not conf.otlp_endpoint:
        return False  # off: and a tracer a test installed in this process stays
    shutdown_tracing()
    resource = Resource.create({
        "service.name": f"{conf.service_name}-{role}",
        "service.version": __version__,
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
        "bend.role": role,
    })
    provider = TracerProvider(resource=resource, sampler=ParentBased(_RunRatio(conf.sample_ratio)),
                              id_generator=_PinnedIds(), shutdown_on_exit=True)
    if processor is not None:
        provider.add_span_processor(processor)
    elif exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert conf.otlp_endpoint is not None
        otlp = OTLPSpanExporter(endpoint=traces_url(conf.otlp_endpoint),
                                headers=dict(conf.otlp_headers) or None,
                                timeout=conf.export_timeout_s)
        provider.add_span_processor(BatchSpanProcessor(
            otlp, schedule_delay_millis=conf.export_delay_ms))
        log.info("tracing_enabled", role=role, endpoint=traces_url(conf.otlp_endpoint),
                 sample_ratio=conf.sample_ratio)
    _current = Tracing(provider, provider.get_tracer("bend", __version__), conf.sample_ratio)
    return True


def shutdown_tracing() -> None:
    """Export what is pending and turn tracing off (at a process's exit)."""
    global _current
    tracing, _current = _current, None
    if tracing is not None:
        tracing.provider.shutdown()
