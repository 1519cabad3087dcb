"""`bend mcp add|list|remove` against the API process: a server is registered once it answers,
shown with its tools, refused with the reason when it does not answer, and removed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from bench.api_latency import ServedApi, served_api
from bend.cli.main import cli
from bend.devstack.mcp_server import McpServerHandle, start_mcp_server
from bend.server.testing import drop_isolated, isolated_settings
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, database_url: str) -> Iterator[ServedApi]:
    settings = isolated_settings(get_settings())
    try:  # the API reaches the test's server on loopback, as a local stack's does
        with served_api(settings, env={"BEND_EGRESS__ALLOWED_NETWORKS": '["127.0.0.0/8"]'}) \
                as running:
            yield running
    finally:
        asyncio.run(drop_isolated(settings))


@pytest.fixture(scope="module")
def glossary() -> Iterator[McpServerHandle]:
    server = start_mcp_server()
    yield server
    server.stop()


def bend(served: ServedApi, *args: str) -> Result:
    env = {"BEND_API_URL": served.url, "BEND_API_KEY": served.admin_key}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_a_server_is_added_listed_refused_when_it_does_not_answer_and_removed(
        served: ServedApi, glossary: McpServerHandle) -> None:
    added = bend(served, "mcp", "add", "glossary", glossary.mcp_url, "--tool", "lookup",
                 "-H", "Authorization: Bearer {{ secrets.glossary_token }}")
    assert added.exit_code != 0  # the secret it names is not set
    assert "secret 'glossary_token' is not set for this project" in added.output, added.output

    added = bend(served, "mcp", "add", "glossary", glossary.mcp_url, "--tool", "lookup")
    assert added.exit_code == 0, added.output
    assert "registered glossary" in added.output and "glossary__lookup" in added.output

    refused = bend(served, "mcp", "add", "gone", "http://127.0.0.1:9/mcp")
    assert refused.exit_code != 0
    assert "MCP server 'gone' (http://127.0.0.1:9/mcp) did not answer" in refused.output

    listed = json.loads(bend(served, "mcp", "list", "--json").output)
    assert [(s["name"], s["tools"]) for s in listed["items"]] == [("glossary", ["lookup"])]
    assert bend(served, "mcp", "remove", "glossary").exit_code == 0
    assert "no MCP servers" in bend(served, "mcp", "list").output
