"""Secrets for executors: per project from the store (cached), the environment only for the
projects settings name, each value only to its allowed hosts, every value masked out of what an
attempt records."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bend.core.commands import RecordLlmCall
from bend.security.secretstore import SecretEntry
from bend.components import Registry
from streams.executors import ExecutionContext, StepOutcome
from streams.executors.dispatch import redacted
from streams.executors.errors import InvalidStepInput, SecretNotFound
from streams.executors.http import HttpInput, with_secrets
from streams.executors.secrets import (
    DictSecrets, Secret, SecretHostRefused, SecretsUnavailable, StoreSecrets,
)
from tests.integration.test_executors_http import T0, http_step

STORE = {
    "p1": {"llm": SecretEntry("sk-p1-aaaaaaaaaaaa", ("api.openai.com",)),
           "old": SecretEntry("legacy-value-123", None)},
    "p2": {"llm": SecretEntry("sk-p2-bbbbbbbbbbbb", ("*.example.com",))},
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _store(**kw: Any) -> tuple[StoreSecrets, list[str]]:
    loads: list[str] = []

    async def load(project: str) -> dict[str, SecretEntry]:
        loads.append(project)
        return dict(STORE.get(project, {}))

    return StoreSecrets(load, **kw), loads


async def test_each_project_reads_its_own_secrets_from_the_store() -> None:
    secrets, _ = _store()
    assert (await secrets.secret("llm", "p1")).value == "sk-p1-aaaaaaaaaaaa"
    assert (await secrets.secret("llm", "p2")).value == "sk-p2-bbbbbbbbbbbb"
    with pytest.raises(SecretNotFound):
        await secrets.secret("llm", "p3")


async def test_a_projects_secrets_are_cached_for_cache_s_then_read_again() -> None:
    clock = Clock()
    secrets, loads = _store(cache_s=30, clock=clock)
    for _ in range(3):
        await secrets.secret("llm", "p1")
    clock.now = 29.9
    await secrets.redactor("p1")
    assert loads == ["p1"]
    clock.now = 30.0
    await secrets.secret("llm", "p1")
    assert loads == ["p1", "p1"]


async def test_the_environment_serves_only_the_projects_settings_name() -> None:
    env = DictSecrets({"llm_api_key": "sk-env-cccccccccccc"})
    secrets, _ = _store(env=env, env_projects=frozenset({"default"}))
    assert (await secrets.secret("LLM_API_KEY", "default")).value == "sk-env-cccccccccccc"
    with pytest.raises(SecretNotFound):
        await secrets.secret("llm_api_key", "p1")  # another project never gets it
    assert (await secrets.redactor("p1"))("sk-env-cccccccccccc") == "sk-env-cccccccccccc"
    assert (await secrets.redactor("default"))("key sk-env-cccccccccccc") == "key ***"
    everyone, _ = _store(env=env, env_projects=frozenset({"*"}))
    assert (await everyone.secret("llm_api_key", "p1")).value == "sk-env-cccccccccccc"


async def test_the_store_wins_over_the_environment() -> None:
    env = DictSecrets({"llm": "sk-env-dddddddddddd"})
    secrets, _ = _store(env=env, env_projects=frozenset({"p1"}))
    assert (await secrets.secret("llm", "p1")).value == "sk-p1-aaaaaaaaaaaa"


async def test_an_unreadable_store_is_a_retryable_failure() -> None:
    async def load(project: str) -> dict[str, SecretEntry]:
        raise ConnectionRefusedError("postgres is down")

    with pytest.raises(SecretsUnavailable) as caught:
        await StoreSecrets(load).secret("llm", "p1")
    assert caught.value.retryable


@pytest.mark.parametrize("url, allowed", [
    ("https://api.openai.com/v1", True), ("https://evil.example.org/v1", False),
    ("http://api.openai.com.evil.org/v1", False), ("https://API.OPENAI.COM/v1", True),
])
def test_a_secret_goes_only_to_its_allowed_hosts(url: str, allowed: bool) -> None:
    secret = Secret("llm", "sk-p1-aaaaaaaaaaaa", ("api.openai.com",))
    if allowed:
        assert secret.for_url(url) == "sk-p1-aaaaaaaaaaaa"
    else:
        with pytest.raises(SecretHostRefused, match="PUT /api/secrets/llm"):
            secret.for_url(url)
    assert Secret("s", "v", None).for_url(url) == "v"  # set before hosts existed: any host
    with pytest.raises(SecretHostRefused, match="none yet"):
        Secret("s", "v", ()).for_url(url)  # no host allowed yet


def test_a_secrets_repr_never_shows_its_value() -> None:
    assert "sk-p1" not in repr(Secret("llm", "sk-p1-aaaaaaaaaaaa", ("api.openai.com",)))


def _ctx(secrets: StoreSecrets) -> ExecutionContext:
    return ExecutionContext(http=httpx.AsyncClient(), registry=Registry(), secrets=secrets)


async def test_http_headers_and_body_name_secrets_that_are_filled_in_for_allowed_hosts() -> None:
    secrets, _ = _store()
    spec = HttpInput(url="https://hooks.example.com/x", headers={"X-Key": "{{ secrets.llm }}"},
                     body={"auth": ["Bearer {{secrets.llm}}"], "n": 1})
    filled, carries = await with_secrets(spec, http_step(url=spec.url, project="p2"),
                                         _ctx(secrets))
    assert carries and filled.headers == {"X-Key": "sk-p2-bbbbbbbbbbbb"}
    assert filled.body == {"auth": ["Bearer sk-p2-bbbbbbbbbbbb"], "n": 1}
    assert spec.headers == {"X-Key": "{{ secrets.llm }}"}  # the task's copy keeps the reference

    plain = HttpInput(url="https://x.example.com", headers={"A": "b"})
    assert await with_secrets(plain, http_step(url=plain.url), _ctx(secrets)) == (plain, False)

    with pytest.raises(SecretHostRefused):
        await with_secrets(spec, http_step(url=spec.url, project="p1"), _ctx(secrets))
    in_url = HttpInput(url="https://x.example.com/?k={{ secrets.llm }}")
    with pytest.raises(InvalidStepInput, match="headers and the body only"):
        await with_secrets(in_url, http_step(url=in_url.url), _ctx(secrets))


def test_an_outcome_is_recorded_with_every_known_value_masked() -> None:
    env = DictSecrets({"k": "sk-live-0123456789", "short": "abc"})
    call = RecordLlmCall(event_id="e", run_id="r", workflow_id="w", occurred_at=T0,
                         step_id="s", attempt=1, call_index=0, model="m",
                         request={"messages": [{"content": "my key is sk-live-0123456789"}]},
                         response={"error": "Incorrect API key provided: sk-live-0123456789"},
                         prompt_tokens=1, completion_tokens=1, latency_ms=1)
    outcome = StepOutcome(succeeded=False, error_type="LlmRejected",
                          message='401: {"error": "Bearer sk-live-0123456789"} abc',
                          output={"echo": ["sk-live-0123456789"]}, records=(call,))
    masked = redacted(outcome, env._redact)  # noqa: SLF001 - the executor's own redactor
    assert masked.message == '401: {"error": "Bearer ***"} abc'  # too short to mask: kept
    assert masked.output == {"echo": ["***"]}
    record = masked.records[0]
    assert isinstance(record, RecordLlmCall)
    assert record.request == {"messages": [{"content": "my key is ***"}]}
    assert record.response == {"error": "Incorrect API key provided: ***"}
