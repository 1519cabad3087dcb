"""Metrics and tracing wrap the orchestrator's decisions (bend.ops.interceptors): an interceptor
passed in sees every decision and every command settled without one; the default ones count
`bend_commands` as the orchestrator did itself. No Kafka: the orchestrator with in-memory ports."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from prometheus_client import REGISTRY

from bend.contracts.codec import encode
from bend.core.commands import Command, StartRun
from bend.core.definitions import definition_json, parse_definition
from bend.core.draft import Decision, Rejected
from bend.core.state import RunState
from bend.ops.interceptors import (
    Decide, Interceptor, MetricsInterceptor, TracingInterceptor, handled_by, wrap,
)
from streams.orchestrator import Orchestrator
from tests.unit.streams.fakes import (
    FakeApp, FakeCatalog, FakeProducer, FakeRunCache, settings, settle,
)

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)
FLOW = {"name": "flow", "steps": [{"id": "a", "type": "transform", "expression": "input"}]}


class Recording(Interceptor):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def decide(self, next_decide: Decide) -> Decide:
        def decide(before: RunState | None, cmd: Command, now: datetime) -> Decision:
            self.log.append(f"{self.name}>")
            decision = next_decide(before, cmd, now)
            verdict = "rejected" if isinstance(decision, Rejected) else "accepted"
            self.log.append(f"<{self.name}:{verdict}")
            return decision

        return decide

    def handled(self, command_type: str, outcome: str) -> None:
        self.log.append(f"{self.name} {command_type} {outcome}")


def _start(run_id: str | None = None) -> StartRun:
    run_id = run_id or str(uuid.uuid4())
    return StartRun(event_id=str(uuid.uuid4()), run_id=run_id, workflow_id="wf", occurred_at=T0,
                    workflow_version=1, correlation_id=run_id, input={"x": 1},
                    definition=definition_json(parse_definition(FLOW)))


def _commands(result: str) -> float:
    return REGISTRY.get_sample_value("bend_commands_total",
                                     {"command": "StartRun", "result": result}) or 0.0


def test_the_first_interceptor_is_outermost() -> None:
    log: list[str] = []
    decide = wrap(lambda before, cmd, now: Rejected("no", "invalid"),
                  [Recording("a", log), Recording("b", log)])
    decide(None, _start(), T0)
    assert log == ["a>", "b>", "<b:rejected", "<a:rejected"]


def test_only_interceptors_that_listen_hear_of_commands_not_decided() -> None:
    log: list[str] = []
    handled_by([TracingInterceptor(), Recording("a", log)])("StartRun", "forwarded")
    assert log == ["a StartRun forwarded"]


async def test_an_orchestrator_decides_through_its_interceptors() -> None:
    log: list[str] = []
    producer = FakeProducer(auto_deliver=True)
    orchestrator = Orchestrator(FakeApp(), settings(), producer=producer, cache=FakeRunCache(),
                                catalog=FakeCatalog(), interceptors=[Recording("r", log)])
    start = _start()
    await orchestrator.handle(0, 0, T0.timestamp(), encode(start))
    await orchestrator.handle(0, 1, T0.timestamp(), encode(_start(start.run_id)))
    await settle()
    # The run completed at once (one transform): a second StartRun is settled undecided.
    assert log == ["r>", "<r:accepted", "r StartRun rejected"]


async def test_the_default_interceptors_count_commands_by_result() -> None:
    accepted, rejected = _commands("accepted"), _commands("rejected")
    producer = FakeProducer(auto_deliver=True)
    orchestrator = Orchestrator(FakeApp(), settings(), producer=producer, cache=FakeRunCache(),
                                catalog=FakeCatalog())
    start = _start()
    await orchestrator.handle(0, 0, T0.timestamp(), encode(start))
    await orchestrator.handle(0, 1, T0.timestamp(), encode(_start(start.run_id)))
    await settle()
    assert _commands("accepted") == accepted + 1
    assert _commands("rejected") == rejected + 1
    assert isinstance(MetricsInterceptor().decide(lambda b, c, n: Rejected("x", "invalid"))(
        None, start, T0), Rejected)
