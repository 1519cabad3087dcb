"""The harness records what the engine records: the example tool chain (a flaky tool retried, a
delay, a tool reading its output) and the fan-out example (a loop, a condition, parallel
branches, a child workflow) run on the real stack through bend.client and in-process through
bend.harness, with the same input, give the same events (seq, type, step), step states, outputs
and final state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bend.client import AsyncClient
from bend.components.testing import FlakyFailure
from bend.devstack.engine import Engine
from bend.harness import run_workflow
from bend.server.testing import api_beside

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).parents[2] / "examples"
RETRY_CHAIN = yaml.safe_load((EXAMPLES / "retry_chain.yaml").read_text())
FAN_OUT = yaml.safe_load((EXAMPLES / "fan_out.yaml").read_text())


@pytest.fixture()
async def bend(engine: Engine) -> AsyncIterator[AsyncClient]:
    async with api_beside(engine.settings) as api, AsyncClient(
            "http://bend.test", api.admin_key,
            transport=httpx.ASGITransport(app=api.app)) as client:
        yield client


def fakes() -> dict[str, Any]:
    """flaky@1 and noop@1 as the engine installs them, as plain functions."""
    attempts: list[int] = []

    def flaky(inputs: dict[str, Any]) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) <= inputs["fail_attempts"]:
            raise FlakyFailure(f"attempt {len(attempts)} of {inputs['fail_attempts']}")
        return {"attempt": len(attempts)}

    return {"flaky@1": flaky, "noop@1": lambda inputs: inputs}


def timeless(output: Any) -> Any:
    """An output with the times in it named, not given: the harness's clock is its own."""
    if isinstance(output, dict):
        return {k: "<time>" if k == "waited_until" else timeless(v) for k, v in output.items()}
    if isinstance(output, list):
        return [timeless(v) for v in output]
    return output


@pytest.mark.parametrize(("example", "run_input", "status"), [
    (RETRY_CHAIN, {"fail_attempts": 1}, "completed"),
    (RETRY_CHAIN, {"fail_attempts": 5}, "failed"),
    (FAN_OUT, {"items": [1, 2, 3]}, "completed"),
    (FAN_OUT, {"items": [4]}, "completed"),
], ids=["retried", "retries-exhausted", "fan-out-then", "fan-out-else"])
async def test_the_harness_and_the_engine_record_the_same_run(
        bend: AsyncClient, example: dict[str, Any], run_input: dict[str, Any],
        status: str) -> None:
    wf = await bend.create_workflow(example)
    started = await bend.start(wf.workflow_id, run_input, wait_for=wf.position)
    engine_run = await bend.wait(started.run_id, timeout_s=90)
    engine_events = await bend.events(started.run_id)

    local = run_workflow(example, run_input, tools=fakes())

    assert (local.status, local.output) == (engine_run.status, engine_run.output)
    assert local.status == status
    # The same events, step by step in the same order. Across parallel branches the engine's
    # interleaving follows which executor answers first (the harness answers in task order),
    # so the whole log is compared per step, and as a whole only where nothing runs in parallel.
    engine_log = [(e.event_type, e.step_id) for e in engine_events]
    local_log = [(type(e).__name__, getattr(e, "step_id", None)) for e in local.events]
    assert _per_step(engine_log) == _per_step(local_log)
    assert [e.seq for e in engine_events] == [e.seq for e in local.events]
    if not _parallel(example):
        assert engine_log == local_log
    assert {s.step_id: (s.status, s.attempts, timeless(s.output), s.error_type)
            for s in engine_run.steps} == {
        sid: (st.status.value, st.attempt, timeless(st.output),
              st.error.error_type if st.error else None)
        for sid, st in local.state.steps.items()}
    assert (engine_run.error_type, engine_run.failed_step_id) == (
        (local.state.error.error_type, local.state.error.step_id) if local.state.error
        else (None, None))


def _per_step(log: list[tuple[str, str | None]]) -> dict[str | None, list[str]]:
    """Each step's events in order (None: the run's own)."""
    out: dict[str | None, list[str]] = {}
    for event_type, step_id in log:
        out.setdefault(step_id, []).append(event_type)
    return out


def _parallel(definition: dict[str, Any]) -> bool:
    """Whether steps of the definition may run at the same time."""
    return any(step.get("type") in ("parallel", "loop") or len(step.get("after") or []) > 1
               for step in definition["steps"]) or sum(
        1 for step in definition["steps"] if not step.get("after")) > 1
