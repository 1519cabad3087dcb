"""Every error becomes an RFC 9457 problem with the right status, media type and members."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from bend.api import problems as p
from bend.api.errors import PROBLEM_JSON, install_error_handlers, status_for
from bend.core.errors import BendError
from bend.core.problems import InvalidDefinition, Problem
from bend.kafka.errors import InvalidPosition, KafkaUnavailable
from bend.security.errors import PermissionDenied, RateLimited
from projections.errors import DatabaseUnavailable, ProjectionBehind


@pytest.mark.parametrize(("error", "status"), [
    (p.UnknownWorkflow("w"), 404), (p.UnknownVersion("w", 3, 2), 404), (p.UnknownRun("r"), 404),
    (p.WorkflowDeleted("w"), 409), (p.RunFinished("r", "failed"), 409),
    (p.IdempotencyConflict("k", "r"), 409), (p.InvalidInput("w", [("input", "bad")]), 422),
    (InvalidDefinition([Problem("steps[0]", "bad")]), 422), (p.InvalidCursor("c"), 400),
    (InvalidPosition("x"), 400), (p.NotProjected("t:0:1", ["a"]), 400),
    (p.UnreadableBody("image/png", ["application/json"]), 415),
    (ProjectionBehind("t:0:1", 1.0, None), 503), (KafkaUnavailable("k:1", "down"), 503),
    (DatabaseUnavailable("pg", "down"), 503), (BendError("anything else"), 500),
    (PermissionDenied("viewer", "workflows:write", ["admin"]), 403),
])
def test_each_typed_error_maps_to_its_status(error: BendError, status: int) -> None:
    assert status_for(error) == status


def _app(error: Exception) -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom/{thing}")
    async def boom(thing: int) -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_a_typed_error_answers_a_problem_with_its_code_detail_and_ids() -> None:
    async with _app(p.UnknownRun("r-42")) as client:
        r = await client.get("/boom/1")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["type"] == "urn:bend:problem:unknown_run" and body["error"] == "unknown_run"
    assert (body["status"], body["instance"], body["run_id"]) == (404, "/boom/1", "r-42")
    assert "GET /api/executions" in body["detail"]


async def test_an_invalid_definition_lists_every_problem_with_its_location() -> None:
    error = InvalidDefinition([Problem("steps[0].expression", "missing", "missing"),
                               Problem("steps[2]", "unknown step type", "union_tag_invalid")])
    async with _app(error) as client:
        r = await client.get("/boom/1")
    assert r.json()["errors"] == [
        {"location": "steps[0].expression", "message": "missing", "code": "missing"},
        {"location": "steps[2]", "message": "unknown step type", "code": "union_tag_invalid"}]


async def test_security_errors_keep_their_status_and_headers() -> None:
    async with _app(RateLimited("key k1", 2.5)) as client:
        r = await client.get("/boom/1")
    assert r.status_code == 429 and "retry-after" in r.headers


async def test_an_unavailable_dependency_says_when_to_retry() -> None:
    async with _app(KafkaUnavailable("127.0.0.1:1", "no broker")) as client:
        r = await client.get("/boom/1")
    assert (r.status_code, r.headers["retry-after"]) == (503, "5")
    assert "bend dev up" in r.json()["detail"]


async def test_a_request_that_breaks_the_schema_is_a_422_problem_naming_the_field() -> None:
    async with _app(RuntimeError()) as client:
        r = await client.get("/boom/not-a-number")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["error"] == "invalid_request"
    assert r.json()["errors"][0]["location"] == "path.thing"


async def test_an_unexpected_crash_is_a_500_problem_that_leaks_nothing() -> None:
    async with _app(RuntimeError("secret internals")) as client:
        r = await client.get("/boom/1")
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert "secret internals" not in r.text


async def test_an_unknown_path_is_a_404_problem() -> None:
    async with _app(RuntimeError()) as client:
        r = await client.get("/nowhere")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
