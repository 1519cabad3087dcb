"""How the suite shares out over pytest-xdist workers (`pytest -n 3 --dist loadgroup`).

Each work unit goes whole to one worker. A module of tests/integration or tests/e2e is one unit,
so its module-scoped engine starts once; tests/browser is one unit (one stack and API for the
package). The modules that start brokers of their own or load the machine on purpose are one
unit together, so no two of them overlap; they and the longest waits are handed out first, so
the quick unit tests fill the other workers' time around them. Without xdist this does nothing.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

# Own brokers (a 3-broker cluster, SASL_SSL brokers) or load and kill -9 by design: run one
# at a time, beside lighter work only.
EXCLUSIVE = "exclusive"
_EXCLUSIVE_MODULES = frozenset({
    "tests/integration/test_cluster.py",
    "tests/integration/test_kafka_tls.py",
    "tests/integration/test_kafka_acls.py",
    "tests/integration/test_scale_out.py",
    "tests/integration/test_projections_throughput.py",
    "tests/integration/test_crash.py",
    "tests/integration/test_recovery_snapshot.py",
    "tests/integration/test_fenced_executor.py",
})
# Long but light (real schedule waits, the fuzzer): started early so they end early.
_LONG_MODULES = (
    "tests/e2e/test_triggers_worker.py",
    "tests/e2e/test_api_fuzz.py",
)
_SHARED_PACKAGES = ("tests/browser/",)  # one package-scoped stack for all its modules
_PER_MODULE = ("tests/integration/", "tests/e2e/")  # module-scoped engines and APIs


def group_of(path: str) -> str | None:
    """The xdist group of a test file (relative to the root, `/`-separated); None: per test."""
    if path in _EXCLUSIVE_MODULES:
        return EXCLUSIVE
    for package in _SHARED_PACKAGES:
        if path.startswith(package):
            return package.rstrip("/")
    if path.startswith(_PER_MODULE):
        return path
    return None


def rank_of(path: str) -> int:
    """Where a file's unit goes in the queue: the longest first, the unit tests last."""
    group = group_of(path)
    if group == EXCLUSIVE:
        return 0
    if path in _LONG_MODULES:
        return 1
    if group is not None and path.startswith(_SHARED_PACKAGES):
        return 2
    return 3 if group is not None else 4


def _path(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class _Units(LoadScopeScheduling):
    """xdist's scope scheduling with `group_of` as the scope, queued in collection order.

    (xdist's own `xdist_group` marks rename the node ids, which this pytest ignores.)"""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # the workers queued the units by rank

    def _split_scope(self, nodeid: str) -> str:
        return group_of(_path(nodeid)) or nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    """`--dist loadgroup` shares out the units of `group_of`."""
    return _Units(config, log) if config.getvalue("dist") == "loadgroup" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under an xdist worker, queue the units by rank (every worker collects the same order)."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        items.sort(key=lambda item: rank_of(_path(item.nodeid)))  # stable: modules stay whole
