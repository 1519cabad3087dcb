"""Probes and metrics of the API process, keyless for probes and scrapers.

`/api/health` and `/livez`: the process answers. `/api/ready` and `/readyz`: Kafka and Postgres
answer and the read models are not far behind (the same JSON as every Bend process's
`/readyz`). `/metrics`: this process's Prometheus metrics.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel

from bend.api.deps import Context
from bend.api.errors import problem_responses
from bend.ops.health import NotReady, run_checks
from bend.ops.server import LIVENESS_PATH, METRICS_PATH, READINESS_PATH
from projections.lag import projection_lag

__all__ = ["router"]

router = APIRouter(tags=["health"])

_CHECK_S = 5.0  # the lag check reads every projected partition's end offset


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


@router.get("/api/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers (it checks nothing else)."""
    return Health()


@router.get(LIVENESS_PATH, response_model=Health, include_in_schema=False)
async def livez() -> Health:
    """Liveness at the path every Bend process serves it on."""
    return Health()


@router.get("/api/ready", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Not ready; see `checks`"},
                       **problem_responses(500)})
async def ready(ctx: Context) -> JSONResponse:
    """Readiness: Postgres and Kafka answer; the read models' lag (a limit is optional).

    No key needed: a load balancer's or Kubernetes' probe calls it.
    """
    lag: int | None = None

    async def postgres() -> str:
        await ctx.pool.fetchval("SELECT 1")
        return "answers"

    async def kafka_and_lag() -> str:
        nonlocal lag
        lag = (await projection_lag(ctx.pool, ctx.offsets, ctx.projected)).total
        limit = ctx.settings.api.ready_max_projection_lag
        if limit is not None and lag > limit:
            raise NotReady(f"read models are {lag} records behind (more than {limit}, "
                           "BEND_API__READY_MAX_PROJECTION_LAG); is the projector running? "
                           "(`bend projector run`)")
        return f"answers; read models {lag} records behind"

    report = await run_checks({"postgres": postgres, "kafka": kafka_and_lag}, _CHECK_S)
    body = Readiness(ready=report.ready, projection_lag=lag,
                     checks={name: Check(**asdict(c)) for name, c in report.checks.items()})
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get(READINESS_PATH, response_model=Readiness, include_in_schema=False)
async def readyz(ctx: Context) -> JSONResponse:
    """Readiness at the path every Bend process serves it on."""
    return await ready(ctx)


@router.get(METRICS_PATH, include_in_schema=False)
async def metrics() -> Response:
    """This process's Prometheus metrics (text exposition format)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
