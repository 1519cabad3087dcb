"""The `bend` CLI as a user drives it, against the API and projector processes and a real engine
(orchestrator and executor processes, the scripted model): apply the example workflow, run it
and wait for its outcome, list and show runs and their events, cancel a waiting run, start runs
in bulk, and the errors a user meets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bench.api_latency import ServedApi, served_api
from bend.cli.demo import EXAMPLE
from bend.cli.main import cli
from bend.devstack.engine import Engine, running_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BEND = str(Path(sys.executable).with_name("bend"))
WAITER = """
name: waiter
steps:
  - {id: nap, type: delay, duration: 60s}
  - {id: after_nap, type: transform, expression: "'woke'", after: [nap]}
"""
GREETER = {"name": "greeter", "input_schema": {"type": "object", "required": ["who"],
                                               "properties": {"who": {"type": "string"}}},
           "steps": [{"id": "greet", "type": "transform",
                      "expression": "join(' ', ['hello', input.who])"}]}
FAILING = """
name: doomed
steps:
  - id: try_it
    type: tool
    component: flaky@1
    inputs: {fail_attempts: 9}
    retry: {max_attempts: 2, initial_interval: 100ms}
"""


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[tuple[Engine, ServedApi]]:
    with running_engine() as engine, served_api(engine.settings) as served:
        yield engine, served


@pytest.fixture()
def served(stack: tuple[Engine, ServedApi]) -> ServedApi:
    return stack[1]


def bend(served: ServedApi, *args: str, key: str | None = None, url: str | None = None,
         stdin: str | None = None) -> Result:
    """`bend ARGS...` in this process, against the served API."""
    env = {"BEND_API_URL": url or served.url,
           "BEND_API_KEY": served.admin_key if key is None else key}
    return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)


def table(text: str, first_header: str) -> dict[str, list[str]]:
    """The rows of the table whose header starts with `first_header`, by their first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header.upper()))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


def field(text: str, name: str) -> str:
    match = re.search(rf"^{name}:\s+(\S.*)$", text, re.MULTILINE)
    assert match, f"no {name}: line in\n{text}"
    return match[1].strip()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def until_status(served: ServedApi, run_id: str, statuses: set[str],
                 timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = bend(served, "runs", "show", run_id, "--json")
        if r.exit_code == 0 and json.loads(r.stdout)["status"] in statuses:
            return json.loads(r.stdout)
        assert time.monotonic() < deadline, f"run {run_id} never {statuses}: {r.output}"
        time.sleep(0.2)


def test_the_example_workflow_applied_and_run_with_wait_prints_its_outcome_and_timeline(
        stack: tuple[Engine, ServedApi]) -> None:
    engine, served = stack
    created = bend(served, "workflows", "apply", str(EXAMPLE))
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("created workflow research_agent (")
    again = bend(served, "workflows", "apply", str(EXAMPLE))
    assert "unchanged: version 1 already has this definition" in again.stdout, again.output
    r = bend(served, "run", "research_agent", "--set", "topic=durable execution",
             "--set", f"llm_base_url={engine.llm.base_url}", "--wait", "--timeout", "90")
    assert r.exit_code == 0, r.output
    steps = table(r.stdout, "step")
    assert {s: row[2] for s, row in steps.items()} == {
        "plan": "succeeded", "search": "succeeded", "found": "succeeded",
        "read_pages": "succeeded", "read_first": "succeeded", "read_second": "succeeded",
        "pause": "succeeded", "research": "succeeded", "nothing_found": "skipped",
        "report": "succeeded"}
    assert all(row[3] == "1" for s, row in steps.items() if s != "nothing_found")
    # The 2 s delay ran 2 s and was never queued (the engine runs it); columns: queued, ran.
    assert steps["pause"][4] == "0ms"
    assert steps["pause"][5].endswith("s") and float(steps["pause"][5][:-1]) >= 2.0
    assert "run completed in" in r.stdout
    output = json.loads(r.stdout[r.stdout.index("; output:\n") + len("; output:\n"):])
    assert output["topic"] == "durable execution" and output["summary"] and output["sources"]
    assert "bend-scripted-researcher" in table(r.stdout, "model")
    assert "RunCompleted" not in r.stdout and "run completed in" in r.stderr  # progress on stderr

    run_id = field(r.stdout, "run")
    listed = bend(served, "runs", "list", "--workflow", "research_agent", "--status", "completed")
    assert listed.exit_code == 0, listed.output
    assert table(listed.stdout, "run")[run_id][1:3] == ["research_agent", "completed"]
    shown = bend(served, "runs", "show", run_id)
    assert field(shown.stdout, "status") == "completed" and "report" in table(shown.stdout, "step")
    events = bend(served, "runs", "events", run_id)
    lines = events.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(1, len(lines) + 1))
    assert "RunRequested" in lines[0] and "RunCompleted" in lines[-1]
    assert any(line.split()[3:5] == ["TimerSet", "pause"] for line in lines), events.stdout
    as_json = [json.loads(line) for line in
               bend(served, "runs", "events", run_id, "--json").stdout.splitlines()]
    assert [e["seq"] for e in as_json] == list(range(1, len(lines) + 1))
    followed = bend(served, "runs", "events", run_id, "--follow")  # finished: ends at once
    assert (followed.exit_code, followed.stdout) == (0, events.stdout)


def test_a_run_waiting_in_a_delay_is_cancelled_and_its_waiting_follower_exits_4(
        served: ServedApi, tmp_path: Path) -> None:
    assert bend(served, "workflows", "apply", write(tmp_path, "w.yaml", WAITER)).exit_code == 0
    env = {**os.environ, "BEND_API_URL": served.url, "BEND_API_KEY": served.admin_key}
    follower = subprocess.Popen([BEND, "run", "waiter", "--wait", "--timeout", "60"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            page = json.loads(bend(served, "runs", "list", "--workflow", "waiter",
                                   "--status", "running", "--json").stdout)
            if page["items"]:
                break
            assert time.monotonic() < deadline, "the waiter run never started"
            time.sleep(0.2)
        run_id = page["items"][0]["run_id"]
        cancelled = bend(served, "runs", "cancel", run_id, "--reason", "enough")
        assert cancelled.exit_code == 0, cancelled.output
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 4, out + err
    assert "run cancelled: enough" in out
    assert table(out, "step")["nap"][2] == "cancelled"
    until_status(served, run_id, {"cancelled"})
    again = bend(served, "runs", "cancel", run_id)
    assert again.exit_code == 4 and "already finished (cancelled)" in again.stderr, again.output


def test_a_failed_run_exits_1_and_shows_its_attempts(served: ServedApi, tmp_path: Path) -> None:
    assert bend(served, "workflows", "apply", write(tmp_path, "f.yaml", FAILING)).exit_code == 0
    r = bend(served, "run", "doomed", "--wait", "--timeout", "60")
    assert r.exit_code == 1, r.output
    step = table(r.stdout, "step")["try_it"]
    assert step[2:4] == ["failed", "2"] and "FlakyFailure" in step[-1]
    assert "run failed at step try_it: FlakyFailure" in r.stdout


def test_runs_start_in_bulk_from_json_lines_and_a_bad_csv_line_starts_nothing(
        served: ServedApi, tmp_path: Path) -> None:
    applied = bend(served, "workflows", "apply", write(tmp_path, "g.json", json.dumps(GREETER)),
                   "--json")
    assert applied.exit_code == 0, applied.output
    lines = write(tmp_path, "in.jsonl", '{"who": "ada"}\n\n{"who": "alan"}\n{"who": "grace"}\n')
    r = bend(served, "runs", "bulk", "greeter", lines)
    assert r.exit_code == 0, r.output
    rows = table(r.stdout, "line")
    assert sorted(rows) == ["1", "3", "4"] and "started 3 runs of greeter" in r.stdout
    for row in rows.values():
        until_status(served, row[1], {"completed"})
    csv = write(tmp_path, "in.csv", "who,age\nada,36\n,41\n")
    r = bend(served, "runs", "bulk", "greeter", csv)
    assert r.exit_code == 2, r.output
    assert "1 of 2 inputs do not match greeter's input schema; nothing was started" in r.stderr
    assert "line 3 (input): 'who' is a required property" in r.stderr
    waited = bend(served, "run", "greeter", "--input", "-", "--wait", "--json",
                  stdin='{"who": "ada"}')
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout)["output"] == {"greet": "hello ada"}


def test_an_idempotency_key_names_one_run_and_refuses_another_input(served: ServedApi,
                                                                    tmp_path: Path) -> None:
    assert bend(served, "workflows", "apply", write(tmp_path, "g.json", json.dumps(GREETER))
                ).exit_code == 0
    first = bend(served, "run", "greeter", "--set", "who=ada", "--idempotency-key", "k1",
                 "--json")
    assert first.exit_code == 0, first.output
    run_id = json.loads(first.stdout)["run_id"]
    until_status(served, run_id, {"completed"})
    again = bend(served, "run", "greeter", "--set", "who=ada", "--idempotency-key", "k1")
    assert again.stdout.startswith(f"run {run_id} of greeter completed (already started with "
                                   "this key)"), again.output
    other = bend(served, "run", "greeter", "--set", "who=bob", "--idempotency-key", "k1")
    assert other.exit_code == 4 and "use a new key" in other.stderr, other.output


def test_an_invalid_workflow_file_lists_every_problem_with_its_location(
        served: ServedApi, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", """
name: broken
steps:
  - {id: first, type: transform, expression: "steps.nowhere.output"}
  - {id: second, type: transform, expression: "'x'", after: [ghost]}
""")
    r = bend(served, "workflows", "apply", bad)
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines() == [
        "error: the workflow definition has 2 problems; fix them and submit it again",
        "  - steps[0].expression: unknown step 'nowhere'",
        "  - steps[1].after[0]: unknown step 'ghost'"]
    unparsable = write(tmp_path, "syntax.yaml", "name: x\nsteps: [\n")
    r = bend(served, "workflows", "apply", unparsable)
    assert r.exit_code == 2 and "line" in r.stderr, r.output


def test_an_agent_with_a_bad_output_schema_or_a_budget_below_one_call_is_refused(
        served: ServedApi, tmp_path: Path) -> None:
    bad = write(tmp_path, "agent.yaml", """
name: bad_agent
llm: {base_url: "http://127.0.0.1:8700/v1"}
steps:
  - id: a
    type: agent
    model: gpt-4o
    prompt: "Summarise the five pages you read about ${input.topic}"
    output_schema: {type: objekt}
    budget: {max_tokens: 3}
""")
    r = bend(served, "workflows", "apply", bad)
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines() == [
        "error: the workflow definition has 1 problem; fix it and submit it again",
        "  - steps[0].output_schema: not a valid JSON Schema: 'objekt' is not valid under any "
        "of the given schemas"]
    fixed = write(tmp_path, "agent2.yaml", bad_text(bad).replace("{type: objekt}", "{}"))
    r = bend(served, "workflows", "apply", fixed)
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines()[1] == (
        "  - steps[0].budget.max_tokens: 3 tokens is less than one call of step a uses: its "
        "prompt alone is at least 7 tokens; raise it")
    priced = write(tmp_path, "agent3.yaml", bad_text(fixed).replace(
        "{max_tokens: 3}", "{max_cost_usd: 0.000001}"))
    r = bend(served, "workflows", "apply", priced)
    assert r.exit_code == 2, r.output
    line = r.stderr.splitlines()[1]  # 7 prompt tokens at $2.50/M and 1 at $10/M: $0.0000275
    assert line.startswith("  - steps[0].budget.max_cost_usd: $1e-06 is less than one call of "
                           "step a costs: at least $0.00002"), line
    assert line.endswith(" for 8 tokens of gpt-4o; raise it"), line


def bad_text(path: str) -> str:
    return Path(path).read_text()


def test_errors_say_what_went_wrong_with_their_exit_codes(served: ServedApi,
                                                          tmp_path: Path) -> None:
    greeter = write(tmp_path, "g.json", json.dumps(GREETER))
    applied = bend(served, "workflows", "apply", greeter)
    assert applied.exit_code == 0, applied.output
    r = bend(served, "runs", "show", "no-such-run")
    assert r.exit_code == 3 and "run no-such-run not found" in r.stderr, r.output
    r = bend(served, "workflows", "show", "no_such_workflow")
    assert r.exit_code == 3 and "no workflow has the id or name" in r.stderr, r.output
    r = bend(served, "workflows", "list", key="")
    assert r.exit_code == 4 and "set BEND_API_KEY" in r.stderr, r.output
    r = bend(served, "workflows", "list", url="http://127.0.0.1:9")
    assert r.exit_code == 5 and "cannot reach the Bend API" in r.stderr, r.output
    r = bend(served, "run", "greeter", "--set", "who")
    assert r.exit_code == 2 and "is not KEY=VALUE" in r.stderr, r.output
    r = bend(served, "run", "greeter", "--set", "who=7")
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines()[1:] == ["  - input.who: 7 is not of type 'string'"], r.stderr
    assert "does not match workflow" in r.stderr.splitlines()[0]
