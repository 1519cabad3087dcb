"""A workflow written with bend.sdk, applied with `bend workflows apply pkg.module:name` (or a
.py file), is the YAML example's workflow to the API (applying the YAML after changes nothing),
and runs to completion on the real stack, driven by the synchronous bend.client over HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from bench.api_latency import ServedApi, served_api
from bend.cli.main import cli
from bend.client import Client
from bend.core.definitions import parse_definition
from bend.devstack.engine import Engine, running_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, database_url: str) -> Iterator[tuple[Engine, ServedApi]]:
    with running_engine() as engine, served_api(engine.settings) as served:
        yield engine, served


def bend(served: ServedApi, *args: str) -> Result:
    env = {"BEND_API_URL": served.url, "BEND_API_KEY": served.admin_key}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_the_python_example_applies_as_the_yaml_one_and_runs_to_completion(
        stack: tuple[Engine, ServedApi], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    engine, served = stack
    monkeypatch.syspath_prepend(str(EXAMPLES))
    created = bend(served, "workflows", "apply", "research_agent:workflow")
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("created workflow research_agent (")
    for same in (str(EXAMPLES / "research_agent.yaml"), str(EXAMPLES / "research_agent.py")):
        again = bend(served, "workflows", "apply", same)
        assert "unchanged: version 1 already has this definition" in again.stdout, again.output
    sys.modules.pop("research_agent", None)
    from_yaml = parse_definition(yaml.safe_load((EXAMPLES / "research_agent.yaml").read_text()))
    for fmt in ("yaml", "json"):
        exported = bend(served, "workflows", "export", "research_agent", "--format", fmt)
        assert exported.exit_code == 0, exported.output
        assert parse_definition(yaml.safe_load(exported.stdout)) == from_yaml
    exported_file = tmp_path / "exported.yaml"
    exported_file.write_text(exported.stdout)
    again = bend(served, "workflows", "apply", str(exported_file))
    assert "unchanged" in again.stdout, again.output

    with Client(served.url, served.admin_key) as client:
        workflow_id = created.stdout.split("(", 1)[1].split(")", 1)[0]
        run = client.run(workflow_id, {"topic": "durable execution",
                                       "llm_base_url": engine.llm.base_url}, timeout_s=120)
        assert run.status == "completed", run
        assert run.output["topic"] == "durable execution" and run.output["sources"]
        assert run.step("nothing_found").status == "skipped"
        assert [r.run_id for r in client.list(workflow_id=workflow_id)] == [run.run_id]
        followed = list(client.follow(run.run_id))
        assert followed[-1].event_type == "RunCompleted"


def test_a_python_workflow_with_a_wrong_reference_is_refused_with_its_file_and_line(
        stack: tuple[Engine, ServedApi], tmp_path: Path) -> None:
    _, served = stack
    flow = tmp_path / "typo_flow.py"
    flow.write_text("from typing import TypedDict\nfrom bend.sdk import Workflow\n\n\n"
                    "class Out(TypedDict):\n    text: str\n\n\n"
                    "wf = Workflow('typo')\n"
                    "a = wf.transform('a', expression='`1`').returning(Out)\n"
                    "wf.transform('b', expression=a.output['txt'])\n")
    r = bend(served, "workflows", "apply", str(flow))
    assert r.exit_code == 2, r.output
    assert f"{flow}:11: step 'a' output has no field 'txt'; it has text" in r.output
