"""What an unfinished run waits on, told from its read models."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bend.web.waiting import reasons

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
RUN = {"run_id": "r1", "status": "running", "requested_at": NOW - timedelta(minutes=1),
       "cancel_requested_at": None}


def step(step_id: str, status: str, **more) -> dict:
    return {"step_id": step_id, "status": status, "attempts": 1, "node_type": "tool", **more}


def test_a_finished_run_waits_on_nothing() -> None:
    assert reasons({**RUN, "status": "completed"}, [step("a", "running")], [], [], NOW) == []


def test_a_delay_timer_says_when_it_is_due_and_whether_it_is_late() -> None:
    due = NOW + timedelta(seconds=30)
    (r,) = reasons(RUN, [step("nap", "scheduled", node_type="delay")],
                   [{"step_id": "nap", "purpose": "delay", "fire_at": due}], [], NOW)
    assert (r.kind, r.step_id, r.until) == ("timer", "nap", due)
    assert "12:00:30" in r.text and "overdue" not in r.text
    (late,) = reasons(RUN, [], [{"step_id": None, "purpose": "timeout",
                                 "fire_at": NOW - timedelta(minutes=2)}], [], NOW)
    assert "overdue" in late.text and "the run's timeout" in late.text


def test_a_retry_back_off_names_the_next_attempt_and_its_time() -> None:
    at = NOW + timedelta(seconds=4)
    found = reasons(RUN, [step("s", "retrying", next_retry_at=at, error_type="Boom")],
                    [{"step_id": "s", "purpose": "retry", "fire_at": at}], [], NOW)
    assert [(r.kind, r.until) for r in found] == [("retry", at)]
    assert "attempt 2" in found[0].text and "Boom" in found[0].text


def test_a_step_no_worker_took_for_long_suggests_checking_executors() -> None:
    (fresh,) = reasons(RUN, [step("s", "scheduled", scheduled_at=NOW - timedelta(seconds=2))],
                       [], [], NOW)
    (stuck,) = reasons(RUN, [step("s", "scheduled", scheduled_at=NOW - timedelta(minutes=5))],
                       [], [], NOW)
    assert "executor" not in fresh.text and "executor" in stuck.text


def test_child_runs_link_to_their_page_and_queued_runs_name_the_orchestrator() -> None:
    (child,) = reasons(RUN, [], [], [{"run_id": "c1", "workflow_id": "w", "status": "running",
                                      "parent_step_id": "sub"}], NOW)
    assert (child.kind, child.link, child.step_id) == ("child_run", "/ui/runs/c1", "sub")
    (queued,) = reasons({**RUN, "status": "queued"}, [], [], [], NOW)
    assert queued.kind == "orchestrator" and "orchestrator" in queued.text


def test_a_running_run_with_nothing_open_still_says_something() -> None:
    (r,) = reasons(RUN, [step("a", "succeeded")], [], [], NOW)
    assert r.kind == "orchestrator"


def test_approval_and_wait_steps_say_what_they_wait_for_as_their_models_tell_it() -> None:
    found = reasons(RUN, [step("ok", "scheduled", node_type="approval",
                               input={"approvers": {"roles": ["admin"], "keys": []}}),
                          step("w", "scheduled", node_type="wait", input={"signal": "go"})],
                    [], [], NOW)
    assert [(r.kind, r.step_id, r.text) for r in found] == [
        ("approval", "ok", "step ok waits for an approval"),
        ("signal", "w", "step w waits for the signal 'go'")]
