"""The side channel of an agent's streamed model text: batches of text to the agent-tokens topic.

Not a contract and not the run log: a record is JSON `{run_id, step_id, attempt, call_index,
seq, text, final}` keyed by run_id, kept an hour (bend.contracts.topics), read by the API's
`GET /api/executions/{run_id}/tokens`. Text goes out every `max_chars` characters or
`max_wait_s` seconds, and once more (`final`) when the call ends, every secret of the run's
project masked (the end of a batch that could be the start of a secret waits for the next).
Best effort: a send that fails is logged and dropped, never failing the step; the finished call
is recorded as ever.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from bend.security.redact import Redactor

__all__ = ["TokenSink", "TokenStream"]

log = structlog.get_logger(__name__)

# (key, value) -> a delivery (the worker's producer, bound to the agent-tokens topic).
TokenSink = Callable[[bytes, bytes], Awaitable[Any]]


@dataclass(slots=True)
class TokenStream:
    """One model call's streamed text, sent in batches to `sink` (None: nowhere)."""

    sink: TokenSink | None
    run_id: str
    step_id: str
    attempt: int
    call_index: int
    max_chars: int = 200
    max_wait_s: float = 0.1
    clock: Callable[[], float] = time.monotonic
    redactor: Redactor = field(default_factory=lambda: Redactor(()))
    pending: list[str] = field(default_factory=list)
    size: int = 0
    seq: int = 0
    last_sent: float = field(default=0.0)
    failed: bool = False

    def __post_init__(self) -> None:
        self.last_sent = self.clock()

    async def add(self, text: str) -> None:
        """Take a piece of text; send the batch once it is big or old enough."""
        if not text or self.sink is None:
            return
        self.pending.append(text)
        self.size += len(text)
        if self.size >= self.max_chars or self.clock() - self.last_sent >= self.max_wait_s:
            await self._send(final=False)

    async def close(self) -> None:
        """Send what is left, marked as the call's last batch."""
        if self.sink is not None:
            await self._send(final=True)

    async def _send(self, *, final: bool) -> None:
        assert self.sink is not None
        raw = "".join(self.pending)
        cut = len(raw) if final else self.redactor.safe_cut(raw)
        text, kept = self.redactor.text(raw[:cut]), raw[cut:]
        self.pending, self.size = ([kept], len(kept)) if kept else ([], 0)
        self.last_sent = self.clock()
        if self.failed or (not text and not final):
            return
        record = {"run_id": self.run_id, "step_id": self.step_id, "attempt": self.attempt,
                  "call_index": self.call_index, "seq": self.seq, "text": text, "final": final}
        self.seq += 1
        try:
            await self.sink(self.run_id.encode(), json.dumps(record).encode())
        except Exception as exc:  # best effort: the step goes on without its text
            self.failed = True  # one warning per call, not one per batch
            log.warning("agent_tokens_not_sent", call_index=self.call_index,
                        error_type=type(exc).__name__, error=str(exc)[:200])
