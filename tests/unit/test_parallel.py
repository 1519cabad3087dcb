"""tests/parallel.py: which tests share an xdist worker, and in what order the units go out."""

from __future__ import annotations

from bend.settings import PROJECT_ROOT
from tests import parallel


def test_every_module_named_exclusive_or_long_exists() -> None:
    named = parallel._EXCLUSIVE_MODULES | set(parallel._LONG_MODULES)
    missing = sorted(p for p in named if not (PROJECT_ROOT / p).is_file())
    assert not missing, f"renamed or removed, update tests/parallel.py: {missing}"


def test_the_modules_that_start_brokers_or_load_the_machine_share_one_unit() -> None:
    groups = {parallel.group_of(p) for p in parallel._EXCLUSIVE_MODULES}
    assert groups == {parallel.EXCLUSIVE}
    assert parallel.group_of("tests/integration/test_cluster.py") == parallel.EXCLUSIVE


def test_an_engine_module_is_one_unit_and_the_browser_package_is_one_unit() -> None:
    assert parallel.group_of("tests/e2e/test_explain.py") == "tests/e2e/test_explain.py"
    assert parallel.group_of("tests/integration/test_topics.py") == \
        "tests/integration/test_topics.py"
    assert parallel.group_of("tests/browser/test_ui_runs.py") == \
        parallel.group_of("tests/browser/test_ui_admin.py") == "tests/browser"


def test_unit_tests_go_out_one_by_one_and_last() -> None:
    assert parallel.group_of("tests/unit/core/test_budgets.py") is None
    ranks = [parallel.rank_of(p) for p in (
        "tests/integration/test_cluster.py", "tests/e2e/test_triggers_worker.py",
        "tests/browser/test_ui_runs.py", "tests/e2e/test_explain.py",
        "tests/unit/core/test_budgets.py")]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


def test_the_scheduler_takes_a_units_scope_from_the_node_id() -> None:
    scope = parallel._Units._split_scope
    assert scope(None, "tests/e2e/test_explain.py::test_a[x::y]") == "tests/e2e/test_explain.py"
    one = "tests/unit/core/test_budgets.py::test_a_budget_needs_a_limit"
    assert scope(None, one) == one

