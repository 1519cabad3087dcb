"""Run a workflow in a test, in-process: the engine's own `decide` and `apply`, no Kafka or
Postgres; tools, HTTP and agents are fakes; delays, retries and timeouts fire without waiting.

    from bend.harness import StepFailure, run_workflow

    def test_the_chain_retries_then_completes() -> None:
        calls = []
        def lookup(inputs):
            calls.append(inputs)
            if len(calls) == 1:
                raise StepFailure("upstream hiccup")     # retried, as the step's policy says
            return {"hits": 3}
        result = run_workflow(definition, {"q": "kafka"}, tools={"lookup@1": lookup})
        assert result.status == "completed" and result.step_output("find") == {"hits": 3}

A run waiting for a signal or an approval stops there: keep the `Harness` and call `signal`,
`approve`, `reject`, `cancel` or `advance` on it.
"""

from __future__ import annotations

from bend.harness.fakes import HANG, NoFake, ScriptedModel, StepFailure
from bend.harness.runner import Harness, HarnessResult, ReplayMismatch, run_workflow

__all__ = [
    "HANG", "Harness", "HarnessResult", "NoFake", "ReplayMismatch", "ScriptedModel",
    "StepFailure", "run_workflow",
]
