"""The CLI's client of Bend's REST API: problem+json answers become a typed error and exit code.

    @click.command()
    @api_command
    def show(api: ApiClient, out: Output, run_id: str) -> None:
        out.data(api.get(f"/api/executions/{run_id}"))

Exit codes: 0 ok, 1 other, 2 usage (the request was wrong), 3 not found, 4 refused or conflict,
5 server error or unavailable.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any

import click
import httpx

from bend.cli.output import Output
from bend.client.errors import ApiError, ApiUnreachable
from bend.client.protocol import Call, RetryPolicy, SseFrame
from bend.client.sync import Client
from bend.core.errors import BendError
from bend.settings import get_settings

__all__ = [
    "DEFAULT_API_URL", "ApiClient", "ApiFailure", "CliError", "ExitCode", "SseEvent",
    "api_command",
]

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ExitCode(IntEnum):
    """What a command's exit status means."""

    OK = 0
    OTHER = 1
    USAGE = 2
    NOT_FOUND = 3
    REFUSED = 4
    UNAVAILABLE = 5


class CliError(BendError, click.ClickException):
    """A command could not do what it was asked; `exit_code` says which way it failed."""

    def __init__(self, message: str, exit_code: int = ExitCode.OTHER,
                 problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.exit_code = int(exit_code)
        self.problems = problems or []

    def show(self, file: Any = None) -> None:
        """Print the error and each problem on its own line, to stderr."""
        click.secho(f"error: {self.message}", fg="red", err=True)
        for location, message in self.problems:
            click.echo(f"  - {location}: {message}" if location else f"  - {message}", err=True)


def _exit_code(status: int) -> ExitCode:
    if status in (400, 413, 415, 422):
        return ExitCode.USAGE
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (401, 403, 409, 429):
        return ExitCode.REFUSED
    return ExitCode.UNAVAILABLE if status >= 500 else ExitCode.OTHER


def _summary(detail: str, problems: list[tuple[str, str]]) -> str:
    """The detail without the problems it lists inline (they are printed one a line)."""
    if not problems:
        return detail
    first = detail.split("\n", 1)[0]
    location, message = problems[0]
    for listed in (f"{location}: {message}", f"{location}: "):
        if location and listed in first:
            return first[:first.index(listed)].rstrip(" :;(") or detail
    return first.rstrip(" :")


# Problems whose API wording points at HTTP endpoints, reworded for the command line.
_CLI_WORDING = {
    "unknown_run": "run {run_id} not found; list runs with `bend runs list`",
    "unknown_workflow": "workflow {workflow_id} not found; list workflows with "
                        "`bend workflows list`",
    "unknown_component": "component {name} not found; list components with "
                         "`bend components list`",
    "workflow_deleted": "workflow {workflow_id} was deleted; its runs stay readable, but to run "
                        "it again apply its definition anew (`bend workflows apply FILE`)",
}


def _worded(problem: dict[str, Any], detail: str) -> str:
    template = _CLI_WORDING.get(str(problem.get("error", "")))
    try:
        return template.format_map(problem) if template else detail
    except (KeyError, ValueError):
        return detail


class ApiFailure(CliError):
    """The API answered with an error; `problem` is its RFC 9457 body (or a stand-in)."""

    def __init__(self, status: int, problem: dict[str, Any], hint: str = "") -> None:
        problems = [(str(p.get("location", "")), str(p.get("message", "")))
                    for p in problem.get("errors") or [] if isinstance(p, dict)]
        detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        super().__init__(_summary(_worded(problem, detail), problems) + hint,
                         _exit_code(status), problems)
        self.status = status
        self.error = str(problem.get("error", ""))
        self.problem = problem


_NO_BODY: Any = object()  # no JSON body (as opposed to a JSON null)
SseEvent = SseFrame  # one server-sent event: `event` its type, `data` its JSON text, `id` seq


class ApiClient:
    """The CLI's client of one Bend API: bend.client's `Client` (the key as a bearer token,
    429 and 503 sent again after their Retry-After), its answers as JSON and its errors as the
    CLI's (ApiFailure, CliError) with their exit codes."""

    def __init__(self, base_url: str = DEFAULT_API_URL, api_key: str | None = None, *,
                 timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_key = bool(api_key)
        self._client = Client(self.base_url, api_key, timeout_s=timeout_s, retry=RETRIES,
                              transport=transport, sleep=sleep, product="bend-cli")

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _failure(self, err: ApiError) -> ApiFailure:
        hint = ""
        if err.status == 401 and not self.has_key:
            hint = " (no API key was sent: set BEND_API_KEY or pass --api-key)"
        return ApiFailure(err.status, err.problem, hint)

    def _unreachable(self, err: ApiUnreachable) -> CliError:
        cause = err.__cause__ or err
        return CliError(f"cannot reach the Bend API at {self.base_url} ({type(cause).__name__}: "
                        f"{cause}); start it with `bend api serve`, or point BEND_API_URL "
                        "(--api-url) at it", ExitCode.UNAVAILABLE)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = _NO_BODY, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        """Send one request; ApiFailure for an error answer, CliError if the API is down."""
        call = Call(method, path, params or {}, None if json is _NO_BODY else json,
                    has_body=json is not _NO_BODY, headers=headers or {}, content=content)
        try:
            return self._client.send(call)
        except ApiError as err:
            raise self._failure(err) from None
        except ApiUnreachable as err:
            raise self._unreachable(err) from None

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with query `params` (None values left out); the JSON answer."""
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """POST `body` as JSON (or pass `content=` and `headers=`); the JSON answer."""
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, **kwargs).json()

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """PUT `body` as JSON (or pass `content=` and `headers=`); the JSON answer."""
        if body is not None:
            kwargs["json"] = body
        return self.request("PUT", path, **kwargs).json()

    def delete(self, path: str) -> Any:
        """DELETE `path`; the JSON answer (None if empty)."""
        response = self.request("DELETE", path)
        return response.json() if response.content else None

    def events(self, path: str, params: dict[str, Any], last_event_id: str | None = None,
               read_timeout_s: float = 60.0) -> Iterator[SseEvent]:
        """The server-sent events of `path` until the server ends the stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            yield from self._client.frames(Call("GET", path, params, headers=headers),
                                           read_timeout_s)
        except ApiError as err:
            raise self._failure(err) from None
        except ApiUnreachable as err:
            raise self._unreachable(err) from None


# A 429 or 503 is refused before the API does anything: sent again after its Retry-After.
RETRIES = RetryPolicy(retries=5, max_wait_s=30.0)


def default_api_url() -> str:
    """The API the settings serve (`BEND_API__HOST`, `BEND_API__PORT`), as `bend api serve`
    binds it; a wildcard host is reached on loopback."""
    api = get_settings().api
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host  # noqa: S104 - compared, not bound
    return f"http://{host}:{api.port}"


def api_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command `--api-url`, `--api-key` and `--json`, and call it with `api` and `out`."""

    @click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
    @click.option("--api-key", envvar="BEND_API_KEY", default=None, metavar="KEY",
                  show_envvar=True, help="API key sent as `Authorization: Bearer`.")
    @click.option("--api-url", envvar="BEND_API_URL", default=default_api_url, metavar="URL",
                  show_default=DEFAULT_API_URL, show_envvar=True,
                  help="Where the Bend API answers (default: BEND_API__HOST:BEND_API__PORT).")
    @functools.wraps(fn)
    def wrapper(*args: Any, api_url: str, api_key: str | None, as_json: bool,
                **kwargs: Any) -> Any:
        # httpx logs each request at INFO: noise in a terminal, and the CLI reports failures.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        with ApiClient(api_url, api_key) as api:
            return fn(*args, api=api, out=Output(as_json), **kwargs)

    return wrapper
