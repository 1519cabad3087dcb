"""What a run-log follower keeps per run, and how it reads a definition's entries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from structlog.testing import capture_logs

from streams.follow import RunMemo, entries_of


class _Entry(BaseModel):
    name: str


def test_entries_are_read_as_models_and_none_when_absent_or_unreadable() -> None:
    assert entries_of({"hooks": [{"name": "a"}, {"name": "b"}]}, "hooks", _Entry) == (
        _Entry(name="a"), _Entry(name="b"))
    assert entries_of({"hooks": []}, "hooks", _Entry) == ()
    assert entries_of({}, "hooks", _Entry) == ()
    assert entries_of(None, "hooks", _Entry) == ()
    with capture_logs() as logs:
        assert entries_of({"hooks": [{"nom": "a"}]}, "hooks", _Entry) == ()
    assert [e["event"] for e in logs] == ["definition_entries_unreadable"]
    assert logs[0]["key"] == "hooks"


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(), st.booleans()),
                max_size=60), st.integers(min_value=1, max_value=5))
def test_the_memo_keeps_the_most_recently_kept_runs_up_to_its_limit(
        ops: list[tuple[str, int, bool]], limit: int) -> None:
    memo: RunMemo[int] = RunMemo(limit)
    model: dict[str, int] = {}  # insertion order = recency
    for run_id, value, drop in ops:
        if drop:
            memo.drop(run_id)
            model.pop(run_id, None)
        else:
            memo.keep(run_id, value)
            model.pop(run_id, None)
            model[run_id] = value
            while len(model) > limit:
                del model[next(iter(model))]
        assert len(memo) == len(model)
    for run_id in "abcdefgh":
        assert memo.get(run_id) == model.get(run_id)
