"""API security on the real Kafka and Postgres: who may call what. Every refused request answers
its status (401, 403, 404) and produces nothing to Kafka (the topics' end offsets do not move)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.security.roles import Principal, Role
from bend.security.tokens import TokenService
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WORKFLOW: dict[str, Any] = {
    "name": "guarded",
    "steps": [{"id": "hello", "type": "transform", "expression": "'hello'"}],
}


@pytest.fixture(scope="module")
async def api(kafka_bootstrap: str, database_url: str) -> AsyncIterator[RunningApi]:
    settings = isolated_settings(get_settings())
    try:
        async with running_api(settings) as running:
            yield running
    finally:
        await drop_isolated(settings)


@pytest.fixture(scope="module")
async def run(api: RunningApi) -> dict[str, Any]:
    """A workflow of the default project with one run asked for, both readable."""
    wf = (await api.client.post("/api/workflows", json=WORKFLOW)).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute", json={"input": {}},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    await api.client.get(f"/api/executions/{r.json()['run_id']}",
                         params={"wait_for": r.json()["position"]["token"]})
    return r.json()


async def refused(api: RunningApi, method: str, url: str, headers: dict[str, str] | None,
                  status: int, error: str, json: Any = None) -> dict[str, Any]:
    """Send a request that must be refused with `status`/`error` and produce nothing."""
    before = await api.log_ends()
    r = await api.client.request(method, url, json=json, headers=headers)
    assert (r.status_code, r.json().get("error")) == (status, error), (method, url, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await api.log_ends() == before, f"{method} {url} produced records"
    return r.json() | {"headers": dict(r.headers)}


async def test_requests_without_credentials_are_unauthenticated(
        api: RunningApi, run: dict[str, Any]) -> None:
    for method, url in (("GET", "/api/workflows"), ("POST", "/api/workflows"),
                        ("POST", f"/api/workflows/{run['workflow_id']}/execute"),
                        ("GET", f"/api/executions/{run['run_id']}"), ("GET", "/api/keys")):
        # An explicit empty Authorization replaces the client's admin key.
        body = await refused(api, method, url, {"Authorization": ""}, 401,
                             "missing_credentials", json={"input": {}})
        assert body["headers"]["www-authenticate"] == 'Bearer realm="bend"'
    # Probes carry no key: liveness, readiness and metrics answer without one.
    for url in ("/api/health", "/api/ready", "/livez", "/readyz", "/metrics"):
        assert (await api.client.get(url, headers={"Authorization": ""})).status_code == 200, url


async def test_wrong_keys_and_foreign_tokens_are_refused(api: RunningApi,
                                                         run: dict[str, Any]) -> None:
    url = f"/api/workflows/{run['workflow_id']}/execute"
    key_id = api.admin_key.split("_")[1]
    wrong = [("bend_nonsense", "invalid_api_key"),
             (f"bend_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}", "invalid_api_key"),
             (f"bend_{key_id}_{secrets.token_urlsafe(32)}", "invalid_api_key"),
             ("not.a.jwt", "invalid_token")]
    for credential, error in wrong:
        await refused(api, "POST", url, api.headers(credential), 401, error, json={"input": {}})
        await refused(api, "POST", url, {"Authorization": "", "X-Api-Key": credential}, 401,
                      error, json={"input": {}})
    other_server = TokenService(b"x" * 32, issuer="bend", audience="bend-api", ttl_s=60)
    forged = other_server.issue(Principal("key:x", api.settings.project, Role.ADMIN)).token
    await refused(api, "POST", url, api.headers(forged), 401, "bad_token_signature",
                  json={"input": {}})


async def test_a_token_exchanged_for_a_key_works_until_it_expires_or_the_key_is_revoked(
        api: RunningApi, run: dict[str, Any]) -> None:
    key = await api.key("operator")
    r = await api.client.post("/api/tokens", headers=api.headers(key), json={"ttl_s": 60})
    assert r.status_code == 201, r.text
    issued = r.json()
    assert (issued["role"], issued["token_type"], issued["expires_in"] <= 60) == (
        "operator", "bearer", True)
    token = api.headers(issued["access_token"])
    assert (await api.client.get(f"/api/executions/{run['run_id']}",
                                 headers=token)).status_code == 200
    await refused(api, "POST", "/api/tokens", token, 400, "api_key_required")
    key_id = key.split("_")[1]
    expired = api.app.state.security.tokens.issue(
        Principal(f"key:{key_id}", api.settings.project, Role.OPERATOR, key_id=key_id),
        ttl_s=-60)
    await refused(api, "GET", f"/api/executions/{run['run_id']}", api.headers(expired.token),
                  401, "expired_token")
    revoked = await api.client.delete(f"/api/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    execute = f"/api/workflows/{run['workflow_id']}/execute"
    await refused(api, "POST", execute, api.headers(key), 401, "revoked_api_key",
                  json={"input": {}})
    await refused(api, "POST", execute, token, 401, "revoked_api_key", json={"input": {}})


async def test_an_expired_key_and_the_tokens_issued_for_it_are_refused(
        api: RunningApi, run: dict[str, Any]) -> None:
    expired_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    issued = await api.app.state.security.keys.create(api.settings.project, Role.OPERATOR,
                                                      expires_at=expired_at)
    url = f"/api/workflows/{run['workflow_id']}/execute"
    await refused(api, "POST", url, api.headers(issued.key), 401, "expired_api_key",
                  json={"input": {}})
    key_id = issued.info.key_id
    token = api.app.state.security.tokens.issue(
        Principal(f"key:{key_id}", api.settings.project, Role.OPERATOR, key_id=key_id))
    await refused(api, "POST", url, api.headers(token.token), 401, "expired_api_key",
                  json={"input": {}})


@pytest.mark.parametrize(("role", "method", "path", "body"), [
    ("viewer", "POST", "/api/workflows/{workflow_id}/execute", {"input": {}}),
    ("viewer", "POST", "/api/executions/{run_id}/cancel", {}),
    ("viewer", "POST", "/api/workflows", WORKFLOW),
    ("operator", "POST", "/api/workflows", WORKFLOW),
    ("operator", "PUT", "/api/workflows/{workflow_id}", WORKFLOW),
    ("operator", "POST", "/api/workflows/{workflow_id}/pause", None),
    ("operator", "DELETE", "/api/workflows/{workflow_id}", None),
    ("editor", "POST", "/api/keys", {"role": "admin"}),
    ("editor", "PUT", "/api/secrets/TOKEN", {"value": "v"}),
    ("viewer", "GET", "/api/secrets", None),
])
async def test_a_role_without_the_permission_is_forbidden(
        api: RunningApi, run: dict[str, Any], role: str, method: str, path: str,
        body: Any) -> None:
    headers = api.headers(await api.key(role))
    body = await refused(api, method, path.format(**run), headers, 403, "permission_denied",
                         json=body)
    assert role in body["detail"]


async def test_each_role_can_do_what_its_permissions_grant(api: RunningApi,
                                                           run: dict[str, Any]) -> None:
    viewer = api.headers(await api.key("viewer"))
    operator = api.headers(await api.key("operator"))
    editor = api.headers(await api.key("editor"))
    assert (await api.client.get(f"/api/workflows/{run['workflow_id']}",
                                 headers=viewer)).status_code == 200
    r = await api.client.post(f"/api/workflows/{run['workflow_id']}/execute",
                              json={"input": {}}, headers=operator)
    assert r.status_code == 202, r.text
    assert (await api.client.post("/api/workflows", json=WORKFLOW,
                                  headers=editor)).status_code == 201
    assert (await api.client.get("/api/secrets", headers=editor)).status_code == 200


async def test_another_projects_workflows_and_runs_are_not_found(
        api: RunningApi, run: dict[str, Any]) -> None:
    stranger = api.headers(await api.key("admin", project="elsewhere"))
    wf, run_id = run["workflow_id"], run["run_id"]
    for method, url, body, error in (
            ("GET", f"/api/workflows/{wf}", None, "unknown_workflow"),
            ("PUT", f"/api/workflows/{wf}", WORKFLOW, "unknown_workflow"),
            ("DELETE", f"/api/workflows/{wf}", None, "unknown_workflow"),
            ("POST", f"/api/workflows/{wf}/pause", None, "unknown_workflow"),
            ("POST", f"/api/workflows/{wf}/execute", {"input": {}}, "unknown_workflow"),
            ("GET", f"/api/executions/{run_id}", None, "unknown_run"),
            ("GET", f"/api/executions/{run_id}/events", None, "unknown_run"),
            ("POST", f"/api/executions/{run_id}/cancel", {}, "unknown_run"),
            ("DELETE", f"/api/keys/{api.admin_key.split('_')[1]}", None, "unknown_api_key")):
        await refused(api, method, url, stranger, 404, error, json=body)
    listed = (await api.client.get("/api/executions", headers=stranger)).json()["items"]
    assert listed == []
    assert (await api.client.get("/api/workflows", headers=stranger)).json()["items"] == []


async def test_keys_are_shown_once_and_secret_values_never(api: RunningApi) -> None:
    r = await api.client.post("/api/keys", json={"role": "viewer", "name": "dashboard"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith(f"bend_{created['key_id']}_")
    listed = (await api.client.get("/api/keys")).text
    assert created["key_id"] in listed and created["key"] not in listed
    value = f"sk-{secrets.token_hex(16)}"
    first = await api.client.put("/api/secrets/OPENAI_API_KEY", json={"value": value})
    again = await api.client.put("/api/secrets/OPENAI_API_KEY", json={"value": value})
    assert (first.status_code, again.status_code) == (201, 200)
    shown = [first, again, await api.client.get("/api/secrets"),
             await api.client.get("/api/secrets/OPENAI_API_KEY")]
    assert all(value not in r.text for r in shown)
    assert shown[3].json()["name"] == "OPENAI_API_KEY"
    assert (await api.client.delete("/api/secrets/OPENAI_API_KEY")).status_code == 204
    gone = await api.client.get("/api/secrets/OPENAI_API_KEY")
    assert (gone.status_code, gone.json()["error"]) == (404, "unknown_secret")


async def test_key_and_secret_changes_through_the_api_are_in_the_audit_log(
        api: RunningApi) -> None:
    created = (await api.client.post("/api/keys", json={"role": "operator"})).json()
    value = f"v-{secrets.token_hex(16)}"
    name = f"AUDITED_{secrets.token_hex(3)}"
    assert (await api.client.put(f"/api/secrets/{name}", json={"value": value})).status_code \
        == 201
    assert (await api.client.delete(f"/api/secrets/{name}")).status_code == 204
    assert (await api.client.delete(f"/api/keys/{created['key_id']}")).status_code == 200
    r = await api.client.get("/api/audit", params={"limit": 20})
    assert r.status_code == 200, r.text
    mine = [(e["action"], e["detail"]["resource"]) for e in r.json()["items"]
            if e["detail"].get("resource") in (f"key:{created['key_id']}", f"secret:{name}")]
    assert mine == [("key.revoke", f"key:{created['key_id']}"),
                    ("secret.delete", f"secret:{name}"), ("secret.set", f"secret:{name}"),
                    ("key.create", f"key:{created['key_id']}")]
    assert value not in r.text
    only = await api.client.get("/api/audit", params={"action": "secret.set"})
    assert {e["action"] for e in only.json()["items"]} == {"secret.set"}


async def test_nul_characters_are_refused_before_they_reach_postgres_or_kafka(
        api: RunningApi, run: dict[str, Any]) -> None:
    await refused(api, "GET", "/api/workflows?q=a%00b", None, 400, "nul_in_url")
    await refused(api, "GET", "/api/executions/a%00b", None, 400, "nul_in_url")
    named = {**WORKFLOW, "name": "bad\x00name"}
    body = await refused(api, "POST", "/api/workflows", None, 422, "invalid_definition",
                         json=named)
    assert body["errors"][0]["location"] == "name"
    await refused(api, "POST", f"/api/workflows/{run['workflow_id']}/execute", None, 422,
                  "invalid_input", json={"input": {"text": "a\x00"}})
    await refused(api, "POST", f"/api/workflows/{run['workflow_id']}/triggers", None, 422,
                  "invalid_trigger",
                  json={"definition": {"type": "manual", "default_input": {"k": "\x00"}}})
