"""Outcomes and the records of an attempt's calls: ordered, stable ids, the task's envelope."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bend.core.commands import RecordLlmCall, RecordToolCall
from bend.core.events import StepScheduled
from streams.executors import DictSecrets, StepOutcome
from streams.executors.errors import MaxIterationsExceeded, SecretNotFound
from streams.executors.outcome import Recorder

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
TASK = StepScheduled(event_id="ev-9", run_id="run-1", workflow_id="wf", workflow_version=3,
                     occurred_at=T0, step_id="research", node_type="agent", attempt=2,
                     correlation_id="corr", tenant="acme", project="p1")


def record_three(task: StepScheduled) -> list:
    """An LLM call, a tool call, an LLM call."""
    rec = Recorder(task, lambda: T0)
    rec.llm_call(model="m", request={"n": 1}, response={}, prompt_tokens=3,
                 completion_tokens=2, latency_ms=5)
    rec.tool_call(tool_call_id="c1", tool_name="web_search@1", arguments={"q": 1},
                  result={"r": 1}, error=None, latency_ms=1)
    rec.llm_call(model="m", request={"n": 2}, response={}, prompt_tokens=9,
                 completion_tokens=4, latency_ms=5)
    return rec.records


def test_records_number_the_calls_of_both_kinds_in_order() -> None:
    records = record_three(TASK)
    assert [type(r) for r in records] == [RecordLlmCall, RecordToolCall, RecordLlmCall]
    assert [r.call_index for r in records] == [0, 1, 2]


def test_records_carry_the_tasks_run_step_attempt_and_tenancy() -> None:
    for r in record_three(TASK):
        assert (r.run_id, r.workflow_id, r.workflow_version, r.step_id, r.attempt) == (
            "run-1", "wf", 3, "research", 2)
        assert (r.causation_id, r.correlation_id, r.tenant, r.project) == (
            "ev-9", "corr", "acme", "p1")


def test_a_rerun_task_records_with_the_same_ids_so_duplicates_are_recognised() -> None:
    first, again = record_three(TASK), record_three(TASK)
    assert [r.event_id for r in first] == [r.event_id for r in again]
    assert len({r.event_id for r in first}) == 3


def test_a_failure_outcome_carries_the_errors_type_message_and_retryability() -> None:
    out = StepOutcome.failure(MaxIterationsExceeded(4))
    assert (out.succeeded, out.error_type, out.retryable) == (
        False, "MaxIterationsExceeded", False)
    assert "raise max_iterations" in (out.message or "")


async def test_secrets_come_from_bend_secret_variables_and_a_missing_one_says_how_to_set_it(
) -> None:
    secrets = DictSecrets.from_environ({"BEND_SECRET_OPENAI": "sk-1", "HOME": "/root"})
    assert await secrets.resolve("openai") == "sk-1"
    assert await secrets.resolve("OPENAI", project="p1") == "sk-1"
    assert "sk-1" not in repr(secrets)
    with pytest.raises(SecretNotFound, match="BEND_SECRET_ANTHROPIC"):
        await secrets.resolve("anthropic")
