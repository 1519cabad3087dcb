"""What executors share in a worker: an HTTP client, components, secrets, breakers, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

from bend.components import Registry, default_registry
from bend.settings import Settings
from streams.executors.circuits import CircuitBreakers
from streams.executors.secrets import DictSecrets, SecretResolver

__all__ = ["ExecutionContext", "utc_now"]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class ExecutionContext:
    """Shared by every step a worker runs; create once, `await aclose()` at shutdown."""

    http: httpx.AsyncClient
    registry: Registry
    secrets: SecretResolver
    circuits: CircuitBreakers = field(default_factory=CircuitBreakers)
    worker_id: str = ""
    clock: Callable[[], datetime] = utc_now
    llm_timeout_s: float = 60.0  # one chat-completions call
    llm_call_attempts: int = 3  # tries of one chat call inside an attempt (5xx/429/timeouts)
    llm_retry_wait_s: float = 0.2  # first back-off between those tries, doubling

    @classmethod
    def create(cls, settings: Settings | None = None, *, worker_id: str = "",
               registry: Registry | None = None, secrets: SecretResolver | None = None,
               circuits: CircuitBreakers | None = None) -> ExecutionContext:
        """A context with a pooled HTTP client, the installed components, `BEND_SECRET_*`."""
        max_connections = 100
        if settings is not None:
            max_connections = max(10, settings.workers.executor_concurrency * 2)
        http = httpx.AsyncClient(
            follow_redirects=True,
            limits=httpx.Limits(max_connections=max_connections),
            timeout=httpx.Timeout(30.0),
        )
        return cls(
            http=http,
            registry=registry or default_registry(),
            secrets=secrets or DictSecrets.from_environ(),
            circuits=circuits or CircuitBreakers(),
            worker_id=worker_id,
        )

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        await self.http.aclose()
