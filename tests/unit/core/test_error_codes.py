"""Error codes: a class's name in snake case unless it sets one, inherited by no subclass."""

from __future__ import annotations

from bend.core.errors import BendError, code_of


def test_a_code_is_the_class_name_in_snake_case_unless_the_class_sets_one() -> None:
    class UnknownThing(BendError):
        status = 404

    class Renamed(UnknownThing):
        code = "unknown_thing"

    class MoreSpecific(UnknownThing):
        pass

    assert UnknownThing("x").code == "unknown_thing"
    assert Renamed.code == "unknown_thing"
    assert MoreSpecific.code == "more_specific" and MoreSpecific.status == 404
    assert BendError.code == "bend_error"


def test_code_of() -> None:
    assert code_of("UnknownRun") == "unknown_run"
    assert code_of("NotAnApprover") == "not_an_approver"
    assert code_of("Run") == "run"
