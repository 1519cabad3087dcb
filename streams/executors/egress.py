"""Egress policy: the addresses executors and pollers may connect to, checked at connect time.

A step names a URL; its host is resolved here and every address it resolves to is checked
before a socket is opened, and the socket is opened to a checked address, never by name again.
So a name that resolves to a loopback, private or cloud-metadata address is refused, and a name
that answers a public address to a check and a private one to the connect (DNS rebinding) has
no second lookup to exploit. TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import httpcore
import httpx

from bend.security.egress import EgressPolicy as BasePolicy
from bend.security.egress import connect_checked, refusal_text
from bend.settings import EgressSettings
from streams.executors.errors import PermanentStepError

__all__ = ["EgressPolicy", "EgressRefused", "GuardedTransport", "guarded_client"]


class EgressRefused(PermanentStepError):
    """A step's URL names a host whose address the egress policy refuses."""

    def __init__(self, host: str, address: str, why: str) -> None:
        super().__init__(refusal_text(host, address, why))
        self.host = host
        self.address = address


@dataclass(frozen=True, slots=True)
class EgressPolicy(BasePolicy):
    """The egress policy of executors and pollers: a refusal fails the step (EgressRefused)."""

    def refused(self, host: str, address: str, why: str) -> Exception:
        """EgressRefused, a permanent step error."""
        return EgressRefused(host, address, why)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and connecting to checked addresses."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        return await connect_checked(
            self._policy, host, port, timeout,
            lambda address: self._inner.connect_tcp(address, port, timeout, local_address,
                                                    socket_options),
            (httpcore.ConnectError, httpcore.ConnectTimeout), httpcore.ConnectError)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                                  socket_options: typing.Iterable[typing.Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an egress target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connections go through the egress policy (no proxies)."""

    def __init__(self, policy: EgressPolicy, limits: httpx.Limits = httpx.Limits()) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


def guarded_client(settings: EgressSettings, *, max_connections: int = 100,
                   timeout_s: float = 30.0, follow_redirects: bool = True) -> httpx.AsyncClient:
    """An HTTP client that connects only where `settings` allow."""
    limits = httpx.Limits(max_connections=max_connections)
    return httpx.AsyncClient(
        transport=GuardedTransport(EgressPolicy.of(settings), limits),
        follow_redirects=follow_redirects, timeout=httpx.Timeout(timeout_s),
    )
