"""`bend approvals list|approve|reject` and `bend runs signal` as a user drives them, against the
served API, its projector and a real engine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bench.api_latency import ServedApi, served_api
from bend.cli.main import cli
from bend.devstack.engine import running_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

GATED = """
name: gated
steps:
  - {id: ok, type: approval, message: "ship ${input.what}?",
     answer_schema: {type: object, required: [size], properties: {size: {type: integer}}}}
  - {id: w, type: wait, signal: go, after: [ok]}
  - {id: after, type: transform, expression: "[steps.ok.output.size, steps.w.output]"}
"""


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, database_url: str) -> Iterator[ServedApi]:
    with running_engine(executors=0) as engine, served_api(engine.settings) as served:
        yield served


def bend(served: ServedApi, *args: str) -> Result:
    """`bend ARGS...` in this process, against the served API, as its admin."""
    env = {"BEND_API_URL": served.url, "BEND_API_KEY": served.admin_key}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def until(served: ServedApi, run_id: str, check: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = bend(served, "runs", "show", run_id, "--json")
        if r.exit_code == 0 and check(json.loads(r.stdout)):
            return json.loads(r.stdout)
        assert time.monotonic() < deadline, f"run {run_id} never got there: {r.output}"
        time.sleep(0.2)


def waiting(step_id: str) -> Any:
    return lambda run: any(s["step_id"] == step_id and s["status"] == "scheduled"
                           for s in run["steps"])


def start(served: ServedApi, tmp_path: Path, what: str) -> str:
    path = tmp_path / "gated.yaml"
    path.write_text(GATED)
    assert bend(served, "workflows", "apply", str(path)).exit_code == 0
    r = bend(served, "run", "gated", "--set", f"what={what}", "--json")
    assert r.exit_code == 0, r.output
    return str(json.loads(r.stdout)["run_id"])


def test_an_approval_listed_approved_and_a_signal_sent_complete_the_run(
        served: ServedApi, tmp_path: Path) -> None:
    run_id = start(served, tmp_path, "v3")
    until(served, run_id, waiting("ok"))
    listed = bend(served, "approvals", "list")
    assert listed.exit_code == 0 and run_id in listed.stdout and "ship v3?" in listed.stdout
    bad = bend(served, "approvals", "approve", run_id, "ok", "--answer", '{"size": "big"}')
    assert bad.exit_code != 0 and "answer_schema" in bad.output, bad.output
    nojson = bend(served, "approvals", "approve", run_id, "ok", "--answer", "{size")
    assert nojson.exit_code == 2 and "not JSON" in nojson.output, nojson.output
    ok = bend(served, "approvals", "approve", run_id, "ok", "--answer", '{"size": 2}',
              "--comment", "fine")
    assert ok.exit_code == 0, ok.output
    until(served, run_id, waiting("w"))
    again = bend(served, "approvals", "approve", run_id, "ok", "--answer", '{"size": 2}')
    assert again.exit_code != 0 and "not waiting" in again.output, again.output
    sent = bend(served, "runs", "signal", run_id, "go", "--data", '{"n": 1}')
    assert sent.exit_code == 0 and f"signal go sent to run {run_id}" in sent.stdout, sent.output
    run = until(served, run_id, lambda r: r["status"] in ("completed", "failed"))
    assert run["status"] == "completed", run
    assert {s["step_id"]: s["output"] for s in run["steps"]}["after"] == [2, {"n": 1}]
    late = bend(served, "runs", "signal", run_id, "go", "--data", "1")
    assert late.exit_code != 0 and "already finished" in late.output, late.output


def test_a_rejection_from_the_cli_fails_the_run(served: ServedApi, tmp_path: Path) -> None:
    run_id = start(served, tmp_path, "v4")
    until(served, run_id, waiting("ok"))
    r = bend(served, "approvals", "reject", run_id, "ok", "--comment", "too risky", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["run_id"] == run_id, r.output
    run = until(served, run_id, lambda r: r["status"] in ("completed", "failed"))
    assert (run["status"], run["error_type"]) == ("failed", "ApprovalRejected"), run
    assert "too risky" in run["error_message"]
