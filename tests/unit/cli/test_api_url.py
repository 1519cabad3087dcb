"""The CLI calls the API where the settings serve it when BEND_API_URL is unset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bend.cli.client import default_api_url
from bend.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_default_api_url_follows_bend_api_port_and_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEND_API__PORT", "8123")
    assert default_api_url() == "http://127.0.0.1:8123"
    monkeypatch.setenv("BEND_API__HOST", "0.0.0.0")  # listening everywhere: call loopback
    get_settings.cache_clear()
    assert default_api_url() == "http://127.0.0.1:8123"
    monkeypatch.setenv("BEND_API__HOST", "10.0.0.5")
    get_settings.cache_clear()
    assert default_api_url() == "http://10.0.0.5:8123"
