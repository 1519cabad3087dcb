"""The egress policy: internal addresses are refused unless settings allow them, and the check is
made on the address connected to (a name is resolved once, then the socket opens to that
address). Servers bind 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest
from fastapi import FastAPI

from bend.security import egress as base_egress
from bend.devstack.llm_server import ServerHandle, serve_in_background
from bend.settings import EgressSettings, Settings
from streams.executors import DictSecrets, ExecutionContext, execute
from streams.executors.egress import EgressPolicy, EgressRefused, GuardedTransport
from tests.integration.test_executors_http import http_step


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"),
    ("10.1.2.3", "a private address"), ("192.168.0.1", "a private address"),
    ("172.16.5.4", "a private address"), ("169.254.169.254", "a cloud metadata address"),
    ("169.254.1.1", "a link-local address"), ("fe80::1", "a link-local address"),
    ("::ffff:127.0.0.1", "a loopback address"), ("0.0.0.0", "the unspecified address"),
    ("100.64.0.1", "not a public address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("224.0.0.1", "a multicast address"),
])
def test_internal_addresses_are_refused_by_default(address: str, why: str) -> None:
    assert EgressPolicy().refusal(address) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert EgressPolicy().refusal(address) is None


def test_allowed_networks_and_allow_private_open_what_they_name() -> None:
    policy = EgressPolicy.of(EgressSettings(allowed_networks=["127.0.0.0/8", "10.1.0.0/16"]))
    assert policy.refusal("127.0.0.5") is None and policy.refusal("10.1.9.9") is None
    assert policy.refusal("10.2.0.1") == "a private address"
    assert policy.refusal("::1") == "a loopback address"  # an IPv4 network holds no v6 address
    assert EgressPolicy.of(EgressSettings(allow_private=True)).refusal("169.254.169.254") is None


def test_a_name_resolving_to_any_refused_address_is_refused_whole() -> None:
    with pytest.raises(EgressRefused, match="rebind.example .10.0.0.1. is refused"):
        EgressPolicy().check("rebind.example", ["93.184.216.34", "10.0.0.1"])


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    handle = serve_in_background(app)
    yield handle
    handle.stop()


async def _get(policy: EgressPolicy, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=GuardedTransport(policy)) as client:
        return await client.get(url)


async def test_loopback_by_name_or_address_is_refused_before_connecting(
        server: ServerHandle) -> None:
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(EgressRefused, match="loopback"):
            await _get(EgressPolicy(), f"http://{host}:{server.port}/ping")
    allowed = EgressPolicy.of(EgressSettings(allowed_networks=["127.0.0.0/8", "::1/128"]))
    r = await _get(allowed, f"http://localhost:{server.port}/ping")
    assert r.json() == {"pong": "yes"}


async def test_the_socket_opens_to_the_checked_address_never_to_the_name_again(
        monkeypatch: pytest.MonkeyPatch, server: ServerHandle) -> None:
    lookups: list[str] = []
    connected: list[str] = []

    async def resolve(host: str, port: int, timeout: float | None) -> list[str]:
        lookups.append(host)  # a rebinding resolver would answer differently the next time
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.9.9.9"]

    real = httpcore.AnyIOBackend.connect_tcp

    async def connect(self: Any, host: str, port: int, *args: Any, **kw: Any) -> Any:
        connected.append(host)
        return await real(self, host, port, *args, **kw)

    monkeypatch.setattr(base_egress, "resolve_host", resolve)
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect)
    allowed = EgressPolicy.of(EgressSettings(allowed_networks=["127.0.0.0/8"]))
    r = await _get(allowed, f"http://rebind.test:{server.port}/ping")
    assert r.status_code == 200
    assert lookups == ["rebind.test"] and connected == ["127.0.0.1"]


async def test_an_http_step_to_an_internal_address_fails_permanently_with_what_to_set(
        server: ServerHandle) -> None:
    ctx = ExecutionContext.create(Settings(), secrets=DictSecrets())  # production defaults
    try:
        outcome = await execute(http_step(url=f"http://127.0.0.1:{server.port}/ping"), ctx)
    finally:
        await ctx.aclose()
    assert not outcome.succeeded and not outcome.retryable
    assert outcome.error_type == "EgressRefused"
    assert "BEND_EGRESS__ALLOWED_NETWORKS" in (outcome.message or "")
