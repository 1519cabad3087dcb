"""What the rebuild tests (API replicas, the CLI) start from: a read model with a few runs."""

from __future__ import annotations

from typing import Any

from bend.server.testing import RunningApi

__all__ = ["GREETER", "TERMINAL", "some_runs"]

TERMINAL = {"switched", "refused", "failed", "abandoned"}  # a rebuild's ends
GREETER: dict[str, Any] = {
    "name": "greeter",
    "steps": [{"id": "greet", "type": "transform", "expression": "join(' ', ['hi', input.who])"}],
}


async def some_runs(api: RunningApi, count: int = 5) -> None:
    """`count` runs of GREETER, started and projected (listed by the API)."""
    wf = (await api.client.post("/api/workflows", json=GREETER)).json()
    tokens = [wf["position"]["token"]]
    for i in range(count):
        r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                                  json={"input": {"who": str(i)}}, params={"wait_for": tokens[:1]})
        assert r.status_code == 202, r.text
        tokens.append(r.json()["position"]["token"])
    r = await api.client.get("/api/executions", params={"wait_for": tokens})
    assert len(r.json()["items"]) == count
