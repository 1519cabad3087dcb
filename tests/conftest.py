"""Project-wide fixtures: the local Kafka and Postgres, which tests use but never start."""

from __future__ import annotations

import pytest

from bend.devstack import kafka, postgres
from bend.settings import get_settings

pytest_plugins = ("tests.parallel",)  # how the suite shares out over xdist workers

_HOW_TO_START = "start it with `bend dev up` (or `make test`, which does)"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap address of a Kafka that answers; fails the test (never skips) if none does."""
    address = get_settings().kafka.bootstrap
    if not kafka.answering(address, timeout_s=5.0):
        pytest.fail(f"Kafka is not running on {address}; {_HOW_TO_START}", pytrace=False)
    return address


@pytest.fixture(scope="session")
def database_url() -> str:
    """The URL of a Postgres that answers; fails the test (never skips) if none does."""
    url = postgres.database_url(get_settings())
    reason = postgres.answers(url, timeout_s=5.0)
    if reason is not None:
        pytest.fail(
            f"Postgres is not running on {postgres.redacted(url)}; {_HOW_TO_START} ({reason})",
            pytrace=False,
        )
    return url
