"""`bend backtest` as a user runs it: against a served API and the real engine, a prompt change
tried on three recorded runs waits and prints each run's verdict and the aggregate; `bend
backtest show` and `bend backtest list` read it back; a missing step is refused with the
reason."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result

from bench.api_latency import ServedApi, served_api
from bend.cli.main import cli
from bend.devstack.engine import Engine, running_engine
from bend.devstack.llm_server import ServerHandle
from tests.e2e.backtesting import NEW_PROMPT, Hook, served_hook, workflow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[tuple[Engine, ServedApi]]:
    with running_engine() as engine, served_api(engine.settings) as served:
        yield engine, served


@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[Hook, ServerHandle]]:
    with served_hook() as served:
        yield served


def bend(served: ServedApi, *args: str) -> Result:
    env = {"BEND_API_URL": served.url, "BEND_API_KEY": served.admin_key}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_bend_backtest_waits_and_prints_each_run_beside_its_original(
        stack: tuple[Engine, ServedApi], hook: tuple[Hook, ServerHandle]) -> None:
    engine, served = stack
    counting, handle = hook
    with httpx.Client(base_url=served.url, headers=served.headers, timeout=30) as http:
        wf = http.post("/api/workflows",
                       json=workflow(engine.llm.base_url, f"{handle.url}/hook")).json()
        runs = [http.post(f"/api/workflows/{wf['workflow_id']}/execute",
                          json={"input": {"topic": f"cli {i}", "suffix": " now" if i else ""}},
                          params={"wait_for": wf["position"]["token"]}).json()["run_id"]
                for i in range(3)]
        deadline = time.monotonic() + 90
        while any(http.get(f"/api/executions/{r}").json().get("status") != "completed"
                  for r in runs):
            assert time.monotonic() < deadline, "the recorded runs never completed"
            time.sleep(0.3)
    hook_before = counting.requests

    refused = bend(served, "backtest", "headline_desk", "--step", "nope", "--prompt", "x")
    assert refused.exit_code != 0 and "has no step 'nope'" in refused.output, refused.output

    done = bend(served, "backtest", "headline_desk", "--step", "research", "--prompt",
                NEW_PROMPT, "--limit", "3", "--timeout", "120")
    assert done.exit_code == 0, done.output
    assert "3 runs: 2 changed, 1 unchanged, 0 failed, 0 pending" in done.output, done.output
    for run_id in runs:
        assert run_id in done.output
    assert "$.headline:" in done.output  # the changed outputs' difference
    assert counting.requests == hook_before

    listed = bend(served, "backtest", "list")
    assert listed.exit_code == 0, listed.output
    backtest_id = listed.output.splitlines()[1].split()[0]
    shown = bend(served, "backtest", "show", backtest_id)
    assert shown.exit_code == 0 and "2 changed, 1 unchanged" in shown.output, shown.output
    as_json = bend(served, "backtest", "show", backtest_id, "--json")
    assert '"verdict": "changed"' in as_json.output
    forks = [c["run_id"] for c in json.loads(as_json.output)["runs"]]
    plain = bend(served, "runs", "list", "--workflow", "headline_desk", "--json")
    assert {r["run_id"] for r in json.loads(plain.output)["items"]} == set(runs)
    theirs = bend(served, "runs", "list", "--backtest", backtest_id, "--json")
    assert {r["run_id"] for r in json.loads(theirs.output)["items"]} == set(forks)
    both = bend(served, "runs", "list", "--workflow", "headline_desk", "--backtests", "--json")
    assert {r["run_id"] for r in json.loads(both.output)["items"]} == {*runs, *forks}
