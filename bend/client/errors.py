"""The client's typed errors: each carries the API's RFC 9457 problem (status, error, detail)."""

from __future__ import annotations

from typing import Any

from bend.core.errors import BendError

__all__ = [
    "ApiError", "ApiUnreachable", "Conflict", "Forbidden", "InvalidRequest", "NotFound",
    "RateLimited", "ServerError", "Unauthorized", "Unavailable", "WaitTimedOut", "error_for",
]


class ApiError(BendError):
    """The API answered with an error; `problem` is its problem-details body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.error = str(problem.get("error") or "")
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        super().__init__(f"HTTP {status} {self.error or 'error'}: {self.detail}")

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The per-field problems of a 422 (`location`, `message`, `code`), else []."""
        found = self.problem.get("errors")
        return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


class InvalidRequest(ApiError):
    """400, 413, 415 or 422: the request was wrong; `errors` lists what to fix."""


class Unauthorized(ApiError):
    """401: no API key, or one the API does not know; pass `api_key=`."""


class Forbidden(ApiError):
    """403: the key's role or project may not do this."""


class NotFound(ApiError):
    """404: no such run, workflow or step in the key's project."""


class Conflict(ApiError):
    """409: the run or workflow is not in a state that allows this (finished, deleted...)."""


class RateLimited(ApiError):
    """429 after the client's retries ran out; `retry_after_s` says when to ask again."""

    def __init__(self, status: int, problem: dict[str, Any],
                 retry_after_s: float | None = None) -> None:
        super().__init__(status, problem)
        self.retry_after_s = retry_after_s


class Unavailable(RateLimited):
    """503 after the client's retries ran out: Kafka or Postgres is not reachable now."""


class ServerError(ApiError):
    """Any other 5xx: the server failed; its logs name the request's path."""


class ApiUnreachable(BendError):
    """No answer at all: the API is down or the URL is wrong."""

    def __init__(self, base_url: str, cause: Exception) -> None:
        super().__init__(f"cannot reach the Bend API at {base_url} ({type(cause).__name__}: "
                         f"{cause}); start it with `bend api serve` or fix base_url")
        self.base_url = base_url


class WaitTimedOut(BendError):
    """A run did not finish within the time `wait` was given."""

    def __init__(self, run_id: str, status: str | None, timeout_s: float) -> None:
        super().__init__(f"run {run_id} still {status or 'unknown'} after {timeout_s:g} s; wait "
                         "again, or cancel it")
        self.run_id, self.run_status, self.timeout_s = run_id, status, timeout_s


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: InvalidRequest, 415: InvalidRequest, 422: InvalidRequest,
}


def error_for(status: int, problem: dict[str, Any], retry_after_s: float | None = None,
              ) -> ApiError:
    """The typed error of an answer with `status` and body `problem`."""
    if status == 429:
        return RateLimited(status, problem, retry_after_s)
    if status == 503:
        return Unavailable(status, problem, retry_after_s)
    if status >= 500:
        return ServerError(status, problem)
    return _BY_STATUS.get(status, ApiError)(status, problem)
