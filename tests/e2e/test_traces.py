"""Spans made in different processes join one trace per run, with the right parents.

The worker processes export with their real OTLP/HTTP exporter (BEND_TRACING__OTLP_ENDPOINT) to
a receiver in this test that decodes the protobuf requests; the test process sends the StartRun
as the API does (RecordProducer) and exports its own span the same way. The model and the http
step's target are local servers that record the `traceparent` each request carried.
"""

from __future__ import annotations

import gzip
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)

from bend.contracts.codec import decode
from bend.contracts.topics import topic_name
from bend.core.events import RunCompleted, StepScheduled
from bend.devstack.engine import Engine, running_engine
from bend.devstack.llm_server import ServerHandle, scripted_reply, serve_in_background
from bend.kafka.fromstart import seek_to_start
from bend.kafka.producer import RecordProducer
from bend.runwatch import RunWatcher
from bend.settings import Settings, TracingSettings
from bend.tracing import configure_tracing, shutdown_tracing

pytestmark = pytest.mark.integration

WORKFLOW = {
    "name": "traced",
    "llm": {"base_url": "${input.llm_base_url}", "api_key_secret": "llm_api_key"},
    "steps": [
        {"id": "lookup", "type": "tool", "component": "web_search@1",
         "inputs": {"query": "durable execution", "limit": 2}},
        {"id": "notify", "type": "http", "method": "POST", "url": "${input.target_url}",
         "body": {"found": "${length(steps.lookup.output.results)}"}},
        {"id": "research", "type": "agent", "after": ["notify"],
         "model": "bend-scripted-researcher", "prompt": "topic: durable execution",
         "tools": ["web_search@1", "fetch_page@1"], "max_iterations": 6, "temperature": 0},
    ],
}


@dataclass(frozen=True)
class Span:
    """One exported span, decoded from OTLP, with the process that sent it."""

    trace_id: int
    span_id: int
    parent_id: int
    name: str
    kind: int
    attributes: dict[str, Any]
    links: tuple[int, ...]
    service: str
    instance: str


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@dataclass
class Recorder:
    """What the local servers received: exported spans, and traceparents by path."""

    spans: list[Span] = field(default_factory=list)
    traceparents: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        """OTLP/HTTP receiver, the scripted model and the http step's target, on one server."""
        app = FastAPI()

        @app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            self._keep(ExportTraceServiceRequest.FromString(body))
            return Response(ExportTraceServiceResponse().SerializeToString(),
                            media_type="application/x-protobuf")

        @app.post("/llm/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            self._saw("llm", request)
            return scripted_reply(await request.json())

        @app.post("/target")
        async def target(request: Request) -> dict[str, Any]:
            self._saw("target", request)
            return {"ok": True}

        return app

    def _saw(self, path: str, request: Request) -> None:
        with self.lock:
            self.traceparents.setdefault(path, []).append(request.headers.get("traceparent", ""))

    def _keep(self, export: ExportTraceServiceRequest) -> None:
        decoded = []
        for rs in export.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    decoded.append(Span(
                        trace_id=int.from_bytes(s.trace_id, "big"),
                        span_id=int.from_bytes(s.span_id, "big"),
                        parent_id=int.from_bytes(s.parent_span_id or b"\0", "big"),
                        name=s.name, kind=s.kind,
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        links=tuple(int.from_bytes(link.span_id, "big") for link in s.links),
                        service=resource.get("service.name", ""),
                        instance=resource.get("service.instance.id", "")))
        with self.lock:
            self.spans.extend(decoded)

    def of_trace(self, trace_id: int) -> list[Span]:
        """The spans received so far in one trace."""
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, ServerHandle]]:
    rec = Recorder()
    server = serve_in_background(rec.app())
    try:
        yield rec, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, recorder: tuple[Recorder, ServerHandle]) -> Iterator[Engine]:
    _, server = recorder
    with pytest.MonkeyPatch.context() as mp:  # the worker processes inherit these
        mp.setenv("BEND_TRACING__OTLP_ENDPOINT", server.url)
        mp.setenv("BEND_TRACING__EXPORT_DELAY_MS", "200")
        with running_engine() as engine:
            yield engine


def _wait_for(rec: Recorder, trace_id: int, want: set[str], timeout_s: float = 30) -> list[Span]:
    """The trace's spans once every name in `want` arrived (exports are batched)."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = rec.of_trace(trace_id)
        names = {s.name for s in spans}
        if want <= names:
            return spans
        if time.monotonic() > deadline:
            pytest.fail(f"spans missing after {timeout_s} s: {sorted(want - names)}; "
                        f"got {sorted(names)}")
        time.sleep(0.2)


async def _task_traceparents(settings: Settings, run_id: str) -> dict[str, str]:
    """The `traceparent` header of each task record of the run, by step id."""
    topic = topic_name("tasks", settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    found: dict[str, str] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.kafka.default_partitions)]
        _, ends = await seek_to_start(consumer, tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*tps, timeout_ms=500)).values():
                for record in records:
                    task = decode(record.value)
                    if isinstance(task, StepScheduled) and task.run_id == run_id:
                        found[task.step_id] = dict(record.headers).get("traceparent",
                                                                       b"").decode()
    finally:
        await consumer.stop()
    return found


async def test_a_runs_spans_from_every_process_join_one_trace_with_the_right_parents(
        engine: Engine, recorder: tuple[Recorder, ServerHandle]) -> None:
    rec, server = recorder
    settings = engine.settings.model_copy(update={"tracing": TracingSettings(
        otlp_endpoint=server.url, export_delay_ms=100)})
    run_id = str(uuid.uuid4())
    start = engine.start_run(WORKFLOW, {"llm_base_url": f"{server.url}/llm/v1",
                                        "target_url": f"{server.url}/target"}, run_id=run_id)
    assert configure_tracing(settings, "api")  # this process sends the StartRun, as the API does
    try:
        async with RunWatcher(engine.settings) as watcher, RecordProducer(settings) as producer:
            await producer.send(start)
            done = await watcher.wait_finished([run_id], timeout_s=90)
    finally:
        shutdown_tracing()  # exports the send span
    assert isinstance(done[run_id], RunCompleted), done[run_id]

    trace_id = uuid.UUID(run_id).int  # a run's trace id is its id
    spans = _wait_for(rec, trace_id, {
        "send StartRun", "decide StartRun", "run wf-traced", "step lookup", "step notify",
        "step research", "execute tool", "execute http", "execute agent", "POST",
        "chat bend-scripted-researcher", "tool web_search@1", "decide CompleteStep"})
    by_id = {s.span_id: s for s in spans}

    # one trace per run: every span naming this run is in it, and nothing of it went elsewhere
    with rec.lock:
        strays = [s for s in rec.spans if s.attributes.get("bend.run_id") == run_id
                  and s.trace_id != trace_id]
    assert not strays
    assert all(s.attributes.get("bend.run_id") in (run_id, None) for s in spans)

    # the processes: the orchestrator records run, step and decide spans; the executor the rest
    services = {s.name.split(" ")[0]: s.service for s in spans}
    assert services["run"] == services["step"] == services["decide"] == "bend-orchestrator"
    assert services["execute"] == services["chat"] == services["POST"] == "bend-executor"
    assert services["send"] == "bend-api"
    assert len({s.instance for s in spans}) == 3  # three processes joined the trace

    [run] = [s for s in spans if s.name == "run wf-traced"]
    assert run.parent_id == 0 and run.attributes["bend.run.status"] == "completed"
    steps = {s.attributes["bend.step_id"]: s for s in spans if s.name.startswith("step ")}
    assert set(steps) == {"lookup", "notify", "research"}
    assert all(s.parent_id == run.span_id and s.attributes["bend.attempt"] == 1
               for s in steps.values())

    # the executor's span of each task is a child of that step's span (carried in the task)
    tasks = await _task_traceparents(engine.settings, run_id)
    assert tasks == {k: f"00-{trace_id:032x}-{v.span_id:016x}-01" for k, v in steps.items()}
    executes = {s.attributes["bend.step_id"]: s for s in spans if s.name.startswith("execute ")}
    assert {k: by_id[v.parent_id].name for k, v in executes.items()} == {
        "lookup": "step lookup", "notify": "step notify", "research": "step research"}
    assert executes["research"].attributes["bend.node_type"] == "agent"

    # calls are children of the execute span of their step
    chats = [s for s in spans if s.name == "chat bend-scripted-researcher"]
    assert chats and all(c.parent_id == executes["research"].span_id for c in chats)
    assert all(c.attributes["gen_ai.usage.input_tokens"] > 0
               and c.attributes["gen_ai.usage.output_tokens"] > 0
               and c.attributes["http.response.status_code"] == 200 for c in chats)
    agent_tools = [s for s in spans if s.name.startswith("tool ")
                   and s.parent_id == executes["research"].span_id]
    assert {s.name for s in agent_tools} >= {"tool web_search@1", "tool fetch_page@1"}
    [step_tool] = [s for s in spans if s.parent_id == executes["lookup"].span_id
                   and s.name.startswith("tool ")]
    assert step_tool.name == "tool web_search@1"
    [post] = [s for s in spans if s.name == "POST"]
    assert post.parent_id == executes["notify"].span_id
    assert post.attributes["http.response.status_code"] == 200

    # the servers saw the call spans as parents of their requests
    [target_tp] = rec.traceparents["target"]
    assert target_tp == f"00-{trace_id:032x}-{post.span_id:016x}-01"
    llm_tps = [tp for tp in rec.traceparents["llm"] if tp.split("-")[1] == f"{trace_id:032x}"]
    assert sorted(int(tp.split("-")[2], 16) for tp in llm_tps) == sorted(c.span_id for c in chats)

    # back across Kafka: each CompleteStep is decided under the executor span that sent it
    completes = {s.attributes["bend.step_id"]: s for s in spans
                 if s.name == "decide CompleteStep"}
    assert {k: v.parent_id for k, v in completes.items()} == {
        k: v.span_id for k, v in executes.items()}
    [decide_start] = [s for s in spans if s.name == "decide StartRun"]
    [send] = [s for s in spans if s.name == "send StartRun"]
    assert decide_start.parent_id == send.span_id and send.parent_id == run.span_id
