"""Schemathesis fuzzes the API's own OpenAPI document in-process (ASGI, real Kafka and Postgres)
with an admin key: no answer is a 5xx, and every answer conforms to the document (documented
status, media type and body schema). Bounded: a few examples per operation and mode."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from bend.api.deps import MAX_WAIT_S
from bend.server.testing import RunningApi, drop_isolated, isolated_settings, running_api
from bend.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = {"positive": 8, "negative": 4}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
BASE = "http://bend.test"
# Fuzzed values would open event streams and waits of up to 30 s each: pin them short.
QUERY = {"wait_s": 0.2, "follow": False, "follow_s": 0.2}


def _request(case: Any, key: str, mode: str) -> dict[str, Any]:
    """The case as httpx arguments, authenticated with `key`. Valid requests go without
    `wait_for` (random log positions only ever get 400), so they reach the handlers."""
    sent = case.as_transport_kwargs(base_url=BASE)
    dropped = {"authorization", "x-api-key"} | ({"x-bend-wait-for"} if mode == "positive"
                                                 else set())
    headers = {k: str(v) for k, v in (sent.get("headers") or {}).items()
               if k.lower() not in dropped}
    headers["Authorization"] = f"Bearer {key}"
    params = {k: v for k, v in (sent.get("params") or {}).items()
              if not (mode == "positive" and k == "wait_for")}
    for name, value in QUERY.items():
        if name in params:
            params[name] = value
    if sent["url"].endswith("/tokens"):  # always a stream, until its step ends: keep it short
        params["follow_s"] = QUERY["follow_s"]
    out: dict[str, Any] = {"method": sent["method"], "url": sent["url"], "headers": headers,
                           "params": params}
    if "json" in sent:
        out["json"] = sent["json"]
    elif sent.get("data") is not None:
        data = sent["data"]
        out["content"] = data if isinstance(data, bytes) else str(data).encode()
    return out


def _fuzz(loop: asyncio.AbstractEventLoop, api: RunningApi, operation: Any, mode: str,
          ids: dict[str, str] | None = None) -> None:
    """Fuzz one operation; with `ids`, its path parameters name resources that exist."""
    names = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in (ids or {}).items() if k in names}
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode),
                                     path_parameters=fixed or None)

    @settings(max_examples=EXAMPLES[mode], deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        sent = _request(case, api.admin_key, mode)
        response = loop.run_until_complete(api.client.request(**sent))
        case.validate_response(response, checks=CHECKS)

    check()


async def _seed(api: RunningApi) -> dict[str, str]:
    """A workflow with a trigger and a run, readable: ids for path parameters."""
    wf = (await api.client.post("/api/workflows", json={
        "name": "fuzzed", "input_schema": {"type": "object"},
        "steps": [{"id": "a", "type": "transform", "expression": "input"}]})).json()
    # The longest wait the API allows: the projector's first join can pass the default 10 s
    # when the suite's other workers load the machine.
    created = await api.client.post(f"/api/workflows/{wf['workflow_id']}/triggers", json={
        "definition": {"type": "schedule", "schedule": {"cron": "@daily"}}},
        params={"wait_for": wf["position"]["token"], "wait_s": MAX_WAIT_S})
    assert created.status_code == 201, created.text
    trigger = created.json()
    run = (await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                                 json={"input": {}})).json()
    seen = await api.client.get("/api/workflows", params={"wait_for": [
        trigger["position"]["token"], run["position"]["token"]], "wait_s": MAX_WAIT_S})
    assert seen.status_code == 200, seen.text
    return {"workflow_id": wf["workflow_id"], "trigger_id": trigger["trigger_id"],
            "run_id": run["run_id"], "key_id": api.admin_key.split("_")[1] + "0"}


def test_fuzzed_requests_get_no_server_error_and_answers_that_match_the_openapi(
        kafka_bootstrap: str, database_url: str) -> None:
    base = get_settings()
    security = base.security.model_copy(update={"key_burst": 100_000, "ip_burst": 100_000,
                                                "key_rate_per_s": 10_000.0,
                                                "ip_rate_per_s": 10_000.0})
    settings_ = isolated_settings(base.model_copy(update={"security": security}))
    loop = asyncio.new_event_loop()  # Hypothesis drives sync tests; the app runs on this loop
    stack = contextlib.AsyncExitStack()
    try:
        api = loop.run_until_complete(stack.enter_async_context(running_api(settings_)))
        schema = schemathesis.openapi.from_dict(api.app.openapi())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 30
        ids = loop.run_until_complete(_seed(api))
        failures: list[str] = []
        rounds = [(mode, None) for mode in EXAMPLES] + [("positive", ids)]
        for operation in operations:
            for mode, known in rounds:
                if known is not None and not operation.path_parameters:
                    continue
                try:
                    _fuzz(loop, api, operation, mode, known)
                except Unsatisfiable:
                    pass  # nothing to negate (no parameters, or no constraints on them)
                except (Exception, BaseExceptionGroup) as err:  # every failure, then report
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode}): "
                                    f"{err}"[:3000])
        assert not failures, "\n\n".join(failures)
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(drop_isolated(settings_))
        loop.close()
