"""A run's trace id and its run and step spans' ids, derived from the run: any process rebuilds
them.

The trace id of a run whose id is a UUID is that UUID (search a tracing backend for the run id
without dashes); any other run id is hashed. The run span's id and each step attempt's span id
are hashes of (run_id) and (run_id, step_id, attempt). Sampling is a hash of the trace id against
the ratio, so every process decides alike without asking any other.
"""

from __future__ import annotations

import hashlib
import uuid

from opentelemetry.trace import SpanContext, TraceFlags

__all__ = [
    "is_sampled", "run_context", "run_span_id", "run_trace_id", "step_context", "step_span_id",
]

_TWO_64 = 1 << 64


def run_trace_id(run_id: str) -> int:
    """The trace id of `run_id`: the UUID itself, else 128 bits of its SHA-256 (never 0)."""
    try:
        value = uuid.UUID(run_id).int
    except ValueError:
        value = 0
    if not value:
        value = int.from_bytes(hashlib.sha256(b"bend-run:" + run_id.encode()).digest()[:16], "big")
    return value or 1


def _span_id(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def run_span_id(run_id: str) -> int:
    """The id of the run's root span."""
    return _span_id("run", run_id)


def step_span_id(run_id: str, step_id: str, attempt: int) -> int:
    """The id of one step attempt's span (from its dispatch to its end)."""
    return _span_id("step", run_id, step_id, str(attempt))


def is_sampled(trace_id: int, ratio: float) -> bool:
    """Whether the trace is kept at `ratio`: a hash of the id, so UUID-shaped ids are fair too."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    digest = hashlib.blake2b(trace_id.to_bytes(16, "big"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < int(ratio * _TWO_64)


def _context(trace_id: int, span_id: int, ratio: float) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if is_sampled(trace_id, ratio) else TraceFlags.DEFAULT)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)


def run_context(run_id: str, ratio: float = 1.0) -> SpanContext:
    """The run span's context, as a remote parent for spans of the run made anywhere."""
    return _context(run_trace_id(run_id), run_span_id(run_id), ratio)


def step_context(run_id: str, step_id: str, attempt: int, ratio: float = 1.0) -> SpanContext:
    """A step attempt span's context, as a remote parent (the executor's, for instance)."""
    return _context(run_trace_id(run_id), step_span_id(run_id, step_id, attempt), ratio)
