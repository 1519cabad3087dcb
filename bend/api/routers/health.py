"""/api/health (the process answers) and /api/ready (Kafka, Postgres and projection lag)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bend.api.deps import Authenticated, Context
from bend.api.errors import problem_responses
from bend.core.errors import BendError
from projections.lag import projection_lag

__all__ = ["MAX_READY_LAG", "router"]

router = APIRouter(prefix="/api", tags=["health"])

MAX_READY_LAG = 10_000  # records behind the log past which the API reports not ready
_CHECK_S = 5.0


class Health(BaseModel):
    """The process is up."""

    status: str = "ok"


class Check(BaseModel):
    """One dependency's state."""

    ok: bool
    detail: str
    ms: float


class Readiness(BaseModel):
    """Whether the API can serve: each check, and the read models' lag in records."""

    ready: bool
    checks: dict[str, Check]
    projection_lag: int | None


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers (it checks nothing else)."""
    return Health()


@router.get("/ready", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Not ready; see `checks`"},
                       **problem_responses(500)})
async def ready(ctx: Context, _caller: Authenticated) -> JSONResponse:
    """Readiness: Postgres answers, Kafka answers, and the read models are not far behind."""
    checks: dict[str, Check] = {}
    lag: int | None = None

    async def postgres() -> str:
        await ctx.pool.fetchval("SELECT 1")
        return "answers"

    async def kafka_and_lag() -> str:
        nonlocal lag
        lag = (await projection_lag(ctx.pool, ctx.offsets, ctx.projected)).total
        if lag > MAX_READY_LAG:
            raise _Behind(f"read models are {lag} records behind (more than {MAX_READY_LAG}); "
                          "is the projector running? (`bend projector run`)")
        return f"answers; read models {lag} records behind"

    for name, check in (("postgres", postgres), ("kafka", kafka_and_lag)):
        started = time.perf_counter()
        try:
            detail, ok = await asyncio.wait_for(check(), _CHECK_S), True
        except (BendError, OSError, TimeoutError, _Behind) as err:
            detail, ok = (str(err) or f"no answer in {_CHECK_S:g} s"), False
        except Exception as err:  # a dependency's own error types: report, never crash
            detail, ok = f"{type(err).__name__}: {err}", False
        checks[name] = Check(ok=ok, detail=detail,
                             ms=round((time.perf_counter() - started) * 1000, 1))
    body = Readiness(ready=all(c.ok for c in checks.values()), checks=checks,
                     projection_lag=lag)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


class _Behind(Exception):
    """The read models trail the log by too much."""
