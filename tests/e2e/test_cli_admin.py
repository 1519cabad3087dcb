"""The `bend` CLI's catalogue and administration commands against the API and projector
processes: components, API keys and roles, triggers, and a workflow's lifecycle."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.api_latency import ServedApi, served_api
from bend.server.testing import drop_isolated, isolated_settings
from bend.cli.main import cli
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

COMPONENT = """
name: summarise
version: 1
description: Summarise a text in one line
tags: [text, llm]
input_schema:
  type: object
  required: [text]
  properties:
    text: {type: string, description: what to summarise}
output_schema: {type: string}
"""
GREETER = """
name: greeter
steps:
  - {id: greet, type: transform, expression: "join(' ', ['hello', input.who])"}
"""


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, database_url: str) -> Iterator[ServedApi]:
    settings = isolated_settings(get_settings())
    try:
        with served_api(settings) as running:
            yield running
    finally:
        asyncio.run(drop_isolated(settings))


def bend(served: ServedApi, *args: str, key: str | None = None) -> Result:
    """`bend ARGS...` in this process, against the served API."""
    env = {"BEND_API_URL": served.url, "BEND_API_KEY": key or served.admin_key}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def rows(text: str) -> dict[str, list[str]]:
    """A table's rows by their first cell (the header row left out)."""
    return {cells[0]: cells for line in text.splitlines()[1:] if line.strip()
            for cells in [re.split(r"\s{2,}", line.strip())]}


def test_components_are_listed_shown_and_registered_once_per_version(
        served: ServedApi, tmp_path: Path) -> None:
    listed = bend(served, "components", "list")
    assert listed.exit_code == 0, listed.output
    assert rows(listed.stdout)["web_search"][1:3] == ["1", "1"]
    shown = bend(served, "components", "show", "web_search")
    assert "component:   web_search@1" in shown.stdout, shown.output
    assert re.search(r"query\s+string \(required\)\s+what to look for", shown.stdout)
    spec = tmp_path / "summarise.yaml"
    spec.write_text(COMPONENT)
    r = bend(served, "components", "register", str(spec))
    assert (r.exit_code, r.stdout) == (0, "registered component summarise@1\n"), r.output
    r = bend(served, "components", "register", str(spec))
    assert "unchanged" in r.stdout, r.output
    spec.write_text(COMPONENT.replace("one line", "two lines"))
    r = bend(served, "components", "register", str(spec))
    assert r.exit_code == 4 and "register the change as a new version" in r.stderr, r.output
    spec.write_text(COMPONENT.replace("type: string}", "type: strin}"))
    r = bend(served, "components", "register", str(spec))
    assert r.exit_code == 2 and "output_schema is not a valid JSON Schema" in r.stderr, r.output
    found = bend(served, "components", "list", "--tag", "llm", "--json")
    assert [c["name"] for c in json.loads(found.stdout)["items"]] == ["summarise"]
    r = bend(served, "components", "show", "summarise@7")
    assert r.exit_code == 3 and "has no version 7; its versions are 1" in r.stderr, r.output


def test_a_key_created_with_a_role_is_limited_to_it_and_stops_working_once_revoked(
        served: ServedApi, tmp_path: Path) -> None:
    created = bend(served, "keys", "create", "--role", "viewer", "--name", "dashboard", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["role"] == "viewer" and key["key"].startswith("bend_")
    listed = bend(served, "keys", "list")
    assert rows(listed.stdout)[key["key_id"]][1:4] == ["dashboard", "viewer", "yes"]
    wf = tmp_path / "greeter.yaml"
    wf.write_text(GREETER)
    r = bend(served, "workflows", "apply", str(wf), key=key["key"])
    assert r.exit_code == 4 and "workflows:write" in r.stderr, r.output
    assert bend(served, "workflows", "list", key=key["key"]).exit_code == 0
    revoked = bend(served, "keys", "revoke", key["key_id"])
    assert revoked.exit_code == 0 and "revoked key" in revoked.stdout, revoked.output
    r = bend(served, "workflows", "list", key=key["key"])
    assert r.exit_code == 4, r.output


def test_an_installation_admin_starts_a_project_with_its_first_admin_key(
        served: ServedApi) -> None:
    created = bend(served, "keys", "create", "--role", "admin", "--project", "team-x")
    assert created.exit_code == 0 and "of project team-x" in created.stdout, created.output
    key = created.stdout.split("the key (shown this once, keep it):")[1].split()[0]
    listed = bend(served, "keys", "list", "--json", key=key)
    assert {k["project"] for k in json.loads(listed.stdout)["items"]} == {"team-x"}
    r = bend(served, "keys", "create", "--role", "viewer", "--project", "team-y", key=key)
    assert r.exit_code == 4 and "installation" in r.stderr, r.output


def test_a_workflow_is_paused_activated_and_deleted_by_name(
        served: ServedApi, tmp_path: Path) -> None:
    wf = tmp_path / "greeter.yaml"
    wf.write_text(GREETER)
    assert bend(served, "workflows", "apply", str(wf)).exit_code == 0
    wf.write_text(GREETER.replace("'hello'", "'hi'"))
    r = bend(served, "workflows", "apply", str(wf))
    assert ", version 2" in r.stdout and r.stdout.startswith("updated"), r.output
    assert "is now paused" in bend(served, "workflows", "pause", "greeter").stdout
    assert "was already paused" in bend(served, "workflows", "pause", "greeter").stdout
    listed = rows(bend(served, "workflows", "list").stdout)
    assert [r[1:4] for r in listed.values()] == [["greeter", "paused", "2"]]
    assert "is now active" in bend(served, "workflows", "activate", "greeter").stdout
    shown = bend(served, "workflows", "show", "greeter", "--version", "1")
    assert re.search(r"^version:\s+1 of 2$", shown.stdout, re.MULTILINE), shown.output
    r = bend(served, "workflows", "delete", "greeter", "--yes")
    assert "is now deleted" in r.stdout, r.output
    assert bend(served, "workflows", "show", "greeter").exit_code == 0  # still readable
    r = bend(served, "run", "greeter")
    assert r.exit_code == 3, r.output


def test_triggers_are_added_listed_changed_and_removed(served: ServedApi, tmp_path: Path) -> None:
    wf = tmp_path / "nightly.yaml"
    wf.write_text(GREETER.replace("name: greeter", "name: nightly"))
    assert bend(served, "workflows", "apply", str(wf)).exit_code == 0
    spec = tmp_path / "schedule.yaml"
    spec.write_text("type: schedule\nschedule: {cron: '0 3 * * *', timezone: UTC}\n")
    added = bend(served, "triggers", "add", "nightly", str(spec), "--json")
    assert added.exit_code == 0, added.output
    trigger_id = json.loads(added.stdout)["trigger_id"]
    listed = rows(bend(served, "triggers", "list", "nightly").stdout)
    assert listed[trigger_id][1:4] == ["schedule", "yes", "0"]
    spec.write_text("type: schedule\nschedule: {cron: '0 4 * * *', timezone: UTC}\n")
    r = bend(served, "triggers", "update", trigger_id, str(spec), "--disable")
    assert r.exit_code == 0 and "(disabled)" in r.stdout, r.output
    assert rows(bend(served, "triggers", "list", "nightly").stdout)[trigger_id][2] == "no"
    spec.write_text("type: schedule\nschedule: {cron: 'not a cron'}\n")
    r = bend(served, "triggers", "add", "nightly", str(spec))
    assert r.exit_code == 2 and "  - " in r.stderr, r.output
    r = bend(served, "triggers", "remove", trigger_id)
    assert r.exit_code == 0 and "removed schedule trigger" in r.stdout, r.output
    assert trigger_id not in bend(served, "triggers", "list", "nightly").stdout


def test_the_audit_log_shows_what_was_done_and_what_was_refused_in_the_project(
        served: ServedApi, tmp_path: Path) -> None:
    wf = tmp_path / "greeter.yaml"
    wf.write_text(GREETER)
    assert bend(served, "workflows", "apply", str(wf)).exit_code == 0
    viewer = json.loads(bend(served, "keys", "create", "--role", "viewer", "--json").stdout)
    refused = bend(served, "workflows", "apply", str(wf), key=viewer["key"])
    assert refused.exit_code == 4
    assert bend(served, "workflows", "list", key="bend_nosuchkey_000").exit_code != 0
    other = json.loads(bend(served, "keys", "create", "--role", "admin", "--project", "audit-b",
                            "--json").stdout)
    assert bend(served, "workflows", "apply", str(wf), key=other["key"]).exit_code == 0

    r = bend(served, "audit", "--json")
    assert r.exit_code == 0, r.output
    entries = json.loads(r.stdout)["items"]
    actions = [e["action"] for e in entries]
    assert "workflow.register" in actions and "access.forbidden" in actions
    forbidden = next(e for e in entries if e["action"] == "access.forbidden")
    assert forbidden["actor"] == f"key:{viewer['key_id']}"
    assert forbidden["detail"]["status"] == 403 and forbidden["detail"]["path"].startswith(
        "/api/workflows")
    # The installation's admin also sees refusals of no project (a key that is no key)...
    assert "access.unauthenticated" in actions
    # ...and no project sees another's entries.
    r = bend(served, "audit", "--json", key=other["key"])
    theirs = json.loads(r.stdout)["items"]
    assert {e["project"] for e in theirs} == {"audit-b"}
    assert [e["action"] for e in theirs] == ["workflow.register"]
    r = bend(served, "audit", "--action", "access.forbidden")
    assert r.exit_code == 0 and "/api/workflows" in r.stdout and "(403" in r.stdout, r.output
    r = bend(served, "audit", key=viewer["key"])
    assert r.exit_code == 4, r.output  # audit:read is for admins
