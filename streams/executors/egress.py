"""Egress policy: the addresses executors and pollers may connect to, checked at connect time.

A step names a URL; its host is resolved here and every address it resolves to is checked
before a socket is opened, and the socket is opened to a checked address, never by name again.
So a name that resolves to a loopback, private or cloud-metadata address is refused, and a name
that answers a public address to a check and a private one to the connect (DNS rebinding) has
no second lookup to exploit. TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpcore
import httpx

from bend.settings import EgressSettings
from streams.executors.errors import PermanentStepError

__all__ = ["EgressPolicy", "EgressRefused", "GuardedTransport", "guarded_client"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses of cloud instance metadata services, named apart in refusals.
_METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2",
                                                "fd00:ec2::254", "100.100.100.200")}


class EgressRefused(PermanentStepError):
    """A step's URL names a host whose address the egress policy refuses."""

    def __init__(self, host: str, address: str, why: str) -> None:
        super().__init__(
            f"connecting to {host} ({address}) is refused: it is {why}; steps may reach such "
            "addresses only if BEND_EGRESS__ALLOWED_NETWORKS holds them (e.g. "
            "'[\"127.0.0.0/8\"]' for a local model server)")
        self.host = host
        self.address = address


def _why_refused(address: IpAddress) -> str | None:
    """What makes `address` internal, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _why_refused(address.ipv4_mapped)
    if address in _METADATA:
        return "a cloud metadata address"
    for test, why in ((address.is_loopback, "a loopback address"),
                      (address.is_unspecified, "the unspecified address"),
                      (address.is_link_local, "a link-local address"),
                      (address.is_multicast, "a multicast address"),
                      (address.is_private, "a private address"),
                      (address.is_reserved, "a reserved address"),
                      (not address.is_global, "not a public address")):
        if test:
            return why
    return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which addresses may be connected to: public ones, and those in `allowed`."""

    allow_private: bool = False
    allowed: tuple[IpNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, settings: EgressSettings) -> EgressPolicy:
        """The policy of `BEND_EGRESS__*`."""
        return cls(settings.allow_private,
                   tuple(ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks))

    @classmethod
    def open(cls) -> EgressPolicy:
        """Every address allowed (tests of other things, closed networks)."""
        return cls(allow_private=True)

    def refusal(self, address: str) -> str | None:
        """Why connecting to `address` is refused, or None when it is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self.allow_private or any(ip in net for net in self.allowed
                                     if net.version == ip.version):
            return None
        return _why_refused(ip)

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The allowed ones of `addresses` (what `host` resolved to), or EgressRefused when the
        host resolves to any refused address (a name half public, half internal is refused)."""
        allowed = []
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                raise EgressRefused(host, address, why)
            allowed.append(address)
        return allowed


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and connecting to checked addresses."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        last: Exception | None = None
        for address in self._policy.check(host, addresses):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc  # try the host's next address, as a resolver-connecting client does
        raise last or httpcore.ConnectError(f"{host} resolved to no address")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                                  socket_options: typing.Iterable[typing.Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an egress target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109
    """Every address `host` resolves to (itself if it is an address), in the resolver's order."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return list(seen)


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
