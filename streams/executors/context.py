"""What executors share in a worker: an HTTP client, components, secrets, breakers, a clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

from bend.components import Registry, default_registry
from bend.mcp.registry import McpAccess
from bend.settings import DEFAULT_LLM_PRICES, LlmPrice, LlmSettings, Settings
from streams.executors.egress import EgressPolicy, GuardedTransport
from streams.executors.circuits import CircuitBreakers
from streams.executors.secrets import DictSecrets, SecretResolver, StoreSecrets
from streams.executors.tokens import TokenSink

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
    mcp: McpAccess = field(default_factory=McpAccess)  # MCP servers agents take tools from
    llm: LlmSettings = field(default_factory=LlmSettings)  # providers by model
    prices: Mapping[str, LlmPrice] = field(default_factory=lambda: dict(DEFAULT_LLM_PRICES))
    # Where an agent's streamed model text goes (the agent-tokens topic); None: no streaming.
    tokens: TokenSink | None = None

    @classmethod
    def create(cls, settings: Settings | None = None, *, worker_id: str = "",
               registry: Registry | None = None, secrets: SecretResolver | None = None,
               circuits: CircuitBreakers | None = None) -> ExecutionContext:
        """A context with a pooled HTTP client that connects only where the egress policy
        allows, the installed components and the secrets store of `settings` (without
        settings: `BEND_SECRET_*` for every project, and no egress check)."""
        max_connections = 100
        policy = EgressPolicy.open()
        if settings is not None:
            max_connections = max(10, settings.workers.executor_concurrency * 2)
            policy = EgressPolicy.of(settings.egress)
        limits = httpx.Limits(max_connections=max_connections)
        http = httpx.AsyncClient(
            transport=GuardedTransport(policy, limits),
            follow_redirects=True,
            timeout=httpx.Timeout(30.0),
        )
        if secrets is None:
            secrets = StoreSecrets.of(settings) if settings is not None \
                else DictSecrets.from_environ()
        return cls(
            http=http,
            registry=registry or default_registry(),
            secrets=secrets,
            circuits=circuits or CircuitBreakers(),
            worker_id=worker_id,
            mcp=McpAccess.of(settings, policy) if settings is not None else McpAccess(),
            llm=settings.llm if settings is not None else LlmSettings(),
            prices=settings.ops.prices() if settings is not None else dict(DEFAULT_LLM_PRICES),
        )

    async def aclose(self) -> None:
        """Close the HTTP client's connections and the secrets store's pool."""
        await self.http.aclose()
        await self.mcp.aclose()
        closer = getattr(self.secrets, "aclose", None)
        if closer is not None:
            await closer()
