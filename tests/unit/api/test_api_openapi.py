"""The OpenAPI document: the seed's paths are there, problems are application/problem+json,
and routes raise no HTTPException (errors are typed)."""

from __future__ import annotations

from pathlib import Path

from bend.api.app import create_api
from bend.api.errors import PROBLEM_JSON
from bend.server.app import create_app
from bend.settings import Settings

SEED_PATHS = {
    ("post", "/api/workflows"), ("get", "/api/workflows/{workflow_id}"),
    ("put", "/api/workflows/{workflow_id}"), ("delete", "/api/workflows/{workflow_id}"),
    ("post", "/api/workflows/{workflow_id}/activate"),
    ("post", "/api/workflows/{workflow_id}/pause"),
    ("post", "/api/workflows/{workflow_id}/execute"), ("get", "/api/executions/{run_id}"),
    ("post", "/api/executions/{run_id}/cancel"), ("get", "/api/executions/{run_id}/logs"),
}


def _spec() -> dict:
    return create_app(Settings()).openapi()


def test_every_endpoint_of_the_seed_document_is_served() -> None:
    paths = _spec()["paths"]
    served = {(method, path) for path, ops in paths.items() for method in ops}
    assert served >= SEED_PATHS


def test_problem_responses_are_documented_as_problem_json_only() -> None:
    spec = _spec()
    # Not ready is an answer, not an error: its 503 carries the readiness report itself.
    spec["paths"]["/api/ready"]["get"]["responses"].pop("503")
    assert "Problem" in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert set(response["content"]) == {PROBLEM_JSON}, (method, path, status)


def test_workflow_bodies_are_documented_as_json_or_yaml() -> None:
    body = _spec()["paths"]["/api/workflows"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "application/yaml"}


def test_commands_answer_202_with_their_log_position() -> None:
    ops = _spec()["paths"]
    execute = ops["/api/workflows/{workflow_id}/execute"]["post"]["responses"]
    assert "202" in execute
    schema = _spec()["components"]["schemas"]["ExecutionAccepted"]["properties"]
    assert {"run_id", "position", "status"} <= set(schema)


def test_no_route_raises_http_exception() -> None:
    routers = Path(create_api.__code__.co_filename).parent / "routers"
    for module in routers.glob("*.py"):
        assert "HTTPException" not in module.read_text(), module.name
