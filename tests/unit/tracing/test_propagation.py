"""W3C trace context goes onto Kafka record headers and HTTP headers and comes back intact."""

from __future__ import annotations

from datetime import datetime, timezone

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from bend.core.commands import CancelRun
from bend.settings import Settings
from bend.tracing import (
    configure_tracing, current, extract_kafka, inject_http, inject_kafka, kafka_headers,
    record_headers,
)
from bend.tracing.provider import traces_url

CTX = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                  trace_flags=TraceFlags(TraceFlags.SAMPLED),
                  trace_state=TraceState([("vendor", "v1")]))
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _in(span_context: SpanContext):  # noqa: ANN202 - an opentelemetry Context
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def test_a_span_context_becomes_traceparent_and_tracestate_record_headers() -> None:
    headers = dict(inject_kafka(_in(CTX)))
    assert headers == {"traceparent": TRACEPARENT, "tracestate": b"vendor=v1"}


def test_record_headers_give_back_the_same_remote_span_context() -> None:
    extracted = trace.get_current_span(extract_kafka(inject_kafka(_in(CTX)))).get_span_context()
    assert (extracted.trace_id, extracted.span_id) == (CTX.trace_id, CTX.span_id)
    assert extracted.is_remote and extracted.trace_flags.sampled
    assert extracted.trace_state.get("vendor") == "v1"


def test_header_names_are_case_insensitive_and_other_headers_are_ignored() -> None:
    headers = [("x-other", b"1"), ("TraceParent", TRACEPARENT)]
    extracted = trace.get_current_span(extract_kafka(headers)).get_span_context()
    assert extracted.span_id == CTX.span_id


def test_records_without_or_with_a_malformed_traceparent_carry_no_span() -> None:
    for headers in (None, [], [("traceparent", b"00-zz-nope-01")],
                    [("traceparent", b"00-00000000000000000000000000000000-b7ad6b7169203331-01")]):
        assert not trace.get_current_span(extract_kafka(headers)).get_span_context().is_valid


def test_nothing_is_injected_outside_a_span() -> None:
    assert inject_kafka() == []
    assert inject_http({"Accept": "x"}) == {"Accept": "x"}


def test_http_requests_get_traceparent_but_keep_one_the_step_set_itself() -> None:
    added = inject_http({"Accept": "x"}, _in(CTX))
    assert added["traceparent"] == TRACEPARENT.decode() and added["Accept"] == "x"
    own = inject_http({"TRACEPARENT": "00-mine"}, _in(CTX))
    assert own["TRACEPARENT"] == "00-mine" and "traceparent" not in own


def test_while_tracing_is_off_no_headers_are_written() -> None:
    assert current() is None
    assert not configure_tracing(Settings(), "test")  # no endpoint: stays off
    with trace.use_span(NonRecordingSpan(CTX)):
        assert kafka_headers() is None
    cmd = CancelRun(event_id="e", run_id="r", workflow_id="w",
                    occurred_at=datetime.now(timezone.utc))
    assert record_headers(cmd) is None


def test_an_otlp_base_url_gets_the_traces_path() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces/") == "http://c:4318/v1/traces"
