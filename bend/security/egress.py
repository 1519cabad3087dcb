"""Egress policy: which addresses Bend may connect to on a workflow's behalf (SSRF guard).

The policy is checked on the addresses a host resolved to, at connect time, by the guarded
transports (streams/executors/egress.py for executors and pollers, bend/mcp/transport.py for
MCP servers): loopback, private, link-local, cloud-metadata and other non-public addresses are
refused unless `BEND_EGRESS__ALLOWED_NETWORKS` holds them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Self, TypeVar

from bend.core.errors import BendError
from bend.settings import EgressSettings

__all__ = ["EgressPolicy", "EgressRefusal", "connect_checked", "refusal_text", "resolve_host"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")

# Addresses of cloud instance metadata services, named apart in refusals.
_METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2",
                                                "fd00:ec2::254", "100.100.100.200")}


def refusal_text(host: str, address: str, why: str) -> str:
    """What a refused connection says, and how to allow it."""
    return (f"connecting to {host} ({address}) is refused: it is {why}; steps may reach such "
            "addresses only if BEND_EGRESS__ALLOWED_NETWORKS holds them (e.g. "
            "'[\"127.0.0.0/8\"]' for a local model server)")


class EgressRefusal(BendError):
    """A URL names a host whose address the egress policy refuses."""

    code = "egress_refused"
    status = 422

    def __init__(self, host: str, address: str, why: str) -> None:
        super().__init__(refusal_text(host, address, why))
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
    def of(cls, settings: EgressSettings) -> Self:
        """The policy of `BEND_EGRESS__*`."""
        return cls(settings.allow_private,
                   tuple(ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks))

    @classmethod
    def open(cls) -> Self:
        """Every address allowed (tests of other things, closed networks)."""
        return cls(allow_private=True)

    def refusal(self, address: str) -> str | None:
        """Why connecting to `address` is refused, or None when it is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self.allow_private or any(ip in net for net in self.allowed
                                     if net.version == ip.version):
            return None
        return _why_refused(ip)

    def refused(self, host: str, address: str, why: str) -> Exception:
        """The error a refused connection raises (executors raise a step error instead)."""
        return EgressRefusal(host, address, why)

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The allowed ones of `addresses` (what `host` resolved to), or the `refused` error
        when the host resolves to any refused address (a name half public, half internal is
        refused)."""
        allowed = []
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                raise self.refused(host, address, why)
            allowed.append(address)
        return allowed


async def resolve_host(host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109
    """Every address `host` resolves to (itself if it is an address), in the resolver's order;
    OSError when it resolves to none."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except TimeoutError as exc:
        raise OSError(f"cannot resolve {host}: timed out") from exc
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return list(seen)


async def connect_checked(policy: EgressPolicy, host: str, port: int,
                          timeout: float | None,  # noqa: ASYNC109 - the transports' own timeout
                          connect: Callable[[str], Awaitable[T]],
                          next_on: tuple[type[Exception], ...],
                          failed: Callable[[str], Exception]) -> T:
    """`connect(address)` to the first of `host`'s checked addresses that takes it: the name is
    resolved once, every address checked, and the socket opened to a checked address, never by
    name again (no second lookup for DNS rebinding). `next_on` errors try the next address;
    `failed(why)` is raised when none is left."""
    try:
        addresses = await resolve_host(host, port, timeout)
    except OSError as exc:
        raise failed(f"cannot resolve {host}: {exc}") from exc
    last: Exception | None = None
    for address in policy.check(host, addresses):
        try:
            return await connect(address)
        except next_on as exc:
            last = exc  # try the host's next address, as a resolver-connecting client does
    raise last or failed(f"{host} resolved to no address")
