"""An httpx2 client (the `mcp` package's HTTP client) that connects only where the egress
policy allows: the same check as executors' HTTP calls, on the address connected to."""

from __future__ import annotations

import typing

import httpcore2
import httpx2

from bend.security.egress import EgressPolicy, connect_checked

__all__ = ["guarded_client"]


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend, resolving names itself and connecting to checked addresses."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's signature
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None,
                          ) -> httpcore2.AsyncNetworkStream:
        return await connect_checked(
            self._policy, host, port, timeout,
            lambda address: self._inner.connect_tcp(address, port, timeout, local_address,
                                                    socket_options),
            (httpcore2.ConnectError, httpcore2.ConnectTimeout), httpcore2.ConnectError)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's signature
                                  socket_options: typing.Iterable[typing.Any] | None = None,
                                  ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not an egress target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport whose connections go through the egress policy (no proxies)."""

    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(), max_connections=10,
            network_backend=_GuardedBackend(policy))


def guarded_client(policy: EgressPolicy, headers: dict[str, str],
                   timeout_s: float) -> httpx2.AsyncClient:
    """A client for one MCP server: its headers, the egress check, `timeout_s` per read."""
    return httpx2.AsyncClient(transport=_GuardedTransport(policy), headers=headers,
                              timeout=httpx2.Timeout(timeout_s), follow_redirects=False)
