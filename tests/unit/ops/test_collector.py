"""A bulk reader raises the collector's thresholds while it runs and gives them back."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bend.ops.collector import BULK_GEN0, fewer_collections


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_thresholds_are_raised_inside_and_given_back_after() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (BULK_GEN0, 20, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_come_back_even_when_the_reader_fails() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the reader failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_readers_keep_them_raised_until_the_last_leaves() -> None:
    projector, rebuild = fewer_collections(), fewer_collections(gen0=10_000)
    projector.__enter__()
    rebuild.__enter__()
    projector.__exit__(None, None, None)  # not in the order they came
    assert gc.get_threshold() == (BULK_GEN0, 20, 10)
    rebuild.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_process_that_already_collects_less_often_is_left_so() -> None:
    gc.set_threshold(100_000, 50, 10)
    with fewer_collections():
        assert gc.get_threshold() == (100_000, 50, 10)
    assert gc.get_threshold() == (100_000, 50, 10)


def test_a_server_freezes_what_start_up_made_so_full_collections_skip_it() -> None:
    # In a process of its own: frozen objects are never freed, not in the test runner's.
    script = (
        "import gc, bend.api.app\n"
        "from bend.ops.collector import freeze_startup\n"
        "before = len(gc.get_objects())\n"
        "frozen = freeze_startup()\n"
        "garbage = [[i] for i in range(1000)]\n"  # made after: still collected as before
        "print(before, frozen, len(gc.get_objects()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    before, frozen, after = map(int, out)
    assert frozen >= before * 0.9 > 50_000  # the imports and the app: hundreds of thousands
    assert 1000 <= after < 2000  # a full collection walks only what came after
