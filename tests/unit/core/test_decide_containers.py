"""Loops, parallel joins, subworkflows and forks."""

from __future__ import annotations

from core_harness import Run, wf

from bend.core.commands import CompleteStep, FailStep, StartRun
from bend.core.decide import Accepted, decide
from bend.core.fork import UnknownStep, fork_seed, start_fork
from bend.core.ids import child_run_id
from bend.core.state import RunStatus, StepStatus

TOOL = "type: tool, component: web_search@1"


def test_a_for_each_loop_runs_its_body_per_item_with_instance_ids() -> None:
    run = Run.of(wf("  - {id: l, type: loop, for_each: input.items, body: [double]}\n"
                    "  - {id: double, type: transform, expression: '[item, index]'}\n"),
                 input={"items": ["a", "b", "c"]})
    run.start()
    assert run.state.status is RunStatus.COMPLETED
    assert [run.st(f"double[{i}]").output for i in range(3)] == [["a", 0], ["b", 1], ["c", 2]]
    assert run.st("l").output == [{"double": ["a", 0]}, {"double": ["b", 1]},
                                  {"double": ["c", 2]}]


def test_a_for_each_loop_keeps_at_most_concurrency_iterations_open() -> None:
    run = Run.of(wf(f"  - {{id: l, type: loop, for_each: input, body: [fetch], concurrency: 2,"
                    " collect: steps.fetch.output}\n"
                    f"  - {{id: fetch, {TOOL}, inputs: {{q: '${{item}}'}}}}\n"),
                 input=["x", "y", "z", "w"])
    run.start()
    assert run.open_tasks() == ["fetch[0]", "fetch[1]"]
    assert run.st("fetch[1]").input == {"component": "web_search@1", "inputs": {"q": "y"}}
    run.complete("fetch[1]", "Y")
    assert run.open_tasks() == ["fetch[0]", "fetch[2]"]
    for i, out in ((0, "X"), (2, "Z")):
        run.complete(f"fetch[{i}]", out)
    assert run.open_tasks() == ["fetch[3]"]
    run.complete("fetch[3]", "W")
    assert run.st("l").output == ["X", "Y", "Z", "W"]
    assert run.state.status is RunStatus.COMPLETED


def test_body_steps_see_outside_steps_and_their_own_iterations_steps() -> None:
    run = Run.of(wf("  - {id: base, type: transform, expression: '`10`'}\n"
                    "  - {id: l, type: loop, for_each: input, body: [a, b]}\n"
                    "  - {id: a, type: transform, expression: 'sum([item, steps.base.output])'}\n"
                    "  - {id: b, type: transform, expression: '[steps.a.output, index]'}\n"),
                 input=[1, 2])
    run.start()
    assert run.st("l").output == [{"b": [11, 0]}, {"b": [12, 1]}]
    assert "base" in run.state.plan.deps["l"]  # the loop waits for what its body reads


def test_an_empty_for_each_succeeds_with_no_results() -> None:
    run = Run.of(wf("  - {id: l, type: loop, for_each: input, body: [a]}\n"
                    "  - {id: a, type: transform, expression: item}\n"), input=[])
    run.start()
    assert run.st("l").output == [] and run.state.status is RunStatus.COMPLETED


def test_for_each_over_something_that_is_not_a_list_fails_the_loop() -> None:
    run = Run.of(wf("  - {id: l, type: loop, for_each: input, body: [a]}\n"
                    "  - {id: a, type: transform, expression: item}\n"), input={"not": "list"})
    run.start()
    assert run.status("l") is StepStatus.FAILED and "not a list" in run.state.error.message


def test_more_items_than_max_iterations_fails_the_loop() -> None:
    run = Run.of(wf("  - {id: l, type: loop, for_each: input, body: [a], max_iterations: 2}\n"
                    "  - {id: a, type: transform, expression: item}\n"), input=[1, 2, 3])
    run.start()
    assert run.state.error.error_type == "TooManyIterations"


def test_a_while_loop_runs_until_its_condition_is_false() -> None:
    run = Run.of(wf("  - {id: l, type: loop, while: 'index < `3`', body: [n],"
                    " collect: steps.n.output}\n"
                    "  - {id: n, type: transform, expression: 'index'}\n"))
    run.start()
    assert run.st("l").output == [0, 1, 2]


def test_a_while_loop_reads_the_previous_iterations_result() -> None:
    run = Run.of(wf("  - {id: l, type: loop, while: 'last != `\"stop\"`', body: [poll],"
                    " collect: steps.poll.output}\n"
                    f"  - {{id: poll, {TOOL}}}\n"))
    run.start()
    assert run.open_tasks() == ["poll[0]"]
    run.complete("poll[0]", "again")
    assert run.open_tasks() == ["poll[1]"]
    run.complete("poll[1]", "stop")
    assert run.st("l").output == ["again", "stop"] and run.state.status is RunStatus.COMPLETED


def test_a_while_loop_stops_at_max_iterations() -> None:
    run = Run.of(wf("  - {id: l, type: loop, while: '`true`', body: [n], max_iterations: 4}\n"
                    "  - {id: n, type: transform, expression: index}\n"))
    run.start()
    assert len(run.st("l").output) == 4 and run.state.status is RunStatus.COMPLETED


def test_nested_loops_name_instances_outermost_first() -> None:
    run = Run.of(wf("  - {id: rows, type: loop, for_each: input, body: [cols]}\n"
                    "  - {id: cols, type: loop, for_each: item, body: [cell]}\n"
                    "  - {id: cell, type: transform, expression: '[item, index]'}\n"),
                 input=[["a", "b"], ["c"]])
    run.start()
    assert run.st("cell[0][1]").output == ["b", 1] and run.st("cell[1][0]").output == ["c", 0]
    assert run.st("rows").output == [{"cols": [{"cell": ["a", 0]}, {"cell": ["b", 1]}]},
                                     {"cols": [{"cell": ["c", 0]}]}]


def test_a_condition_inside_a_loop_body_chooses_per_iteration() -> None:
    run = Run.of(wf("  - {id: l, type: loop, for_each: input, body: [c]}\n"
                    "  - {id: c, type: condition, if: item, then: [t], else: [e]}\n"
                    "  - {id: t, type: transform, expression: \"'t'\"}\n"
                    "  - {id: e, type: transform, expression: \"'e'\"}\n"), input=[True, False])
    run.start()
    assert run.st("l").output == [{"t": "t", "e": None}, {"t": None, "e": "e"}]


def test_a_parallel_with_join_all_waits_for_every_branch() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, branches: [[a1, a2], [b]]}\n"
                    f"  - {{id: a1, {TOOL}}}\n  - {{id: a2, {TOOL}, after: [a1]}}\n"
                    f"  - {{id: b, {TOOL}}}\n"
                    "  - {id: after, type: transform, expression: steps.p.output.completed}\n"))
    run.start()
    assert run.open_tasks() == ["a1", "b"]
    run.complete("b", "B")
    run.complete("a1", "A1")
    assert run.status("p") is StepStatus.SCHEDULED
    run.complete("a2", "A2")
    assert run.st("p").output == {"completed": [0, 1],
                                  "results": [{"a1": "A1", "a2": "A2"}, {"b": "B"}]}
    assert run.st("after").output == [0, 1]


def test_a_parallel_with_join_any_cancels_the_other_branches_once_one_finishes() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, join: any, branches: [[a1, a2], [b]]}\n"
                    f"  - {{id: a1, {TOOL}}}\n  - {{id: a2, {TOOL}, after: [a1]}}\n"
                    f"  - {{id: b, {TOOL}}}\n"))
    run.start()
    run.complete("a1", "A1")
    run.complete("b", "B")
    assert run.types() == ["StepStarted:b", "StepSucceeded:b", "StepCancelled:a2", "StepSucceeded:p",
                           "RunCompleted"]
    assert run.st("p").output == {"completed": [1], "results": [None, {"b": "B"}]}


def test_a_parallel_with_join_first_n_skips_branch_steps_that_never_began() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, join: first_n, n: 2,"
                    " branches: [[a], [b], [c1, c2]]}\n"
                    f"  - {{id: a, {TOOL}}}\n  - {{id: b, {TOOL}}}\n"
                    f"  - {{id: c1, {TOOL}}}\n  - {{id: c2, {TOOL}, after: [c1]}}\n"))
    run.start()
    run.complete("a", 1)
    run.complete("b", 2)
    assert run.types() == ["StepStarted:b", "StepSucceeded:b", "StepCancelled:c1", "StepSucceeded:p",
                           "StepSkipped:c2", "RunCompleted"]


def test_a_skipped_parallel_skips_its_branches() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, when: 'input.go', branches: [[a]]}\n"
                    f"  - {{id: a, {TOOL}}}\n"), input={"go": False})
    run.start()
    assert run.status("a") is StepStatus.SKIPPED and run.state.status is RunStatus.COMPLETED


def test_cancelling_a_loop_cancels_its_open_iterations() -> None:
    run = Run.of(wf(f"  - {{id: l, type: loop, for_each: input, body: [f], concurrency: 3}}\n"
                    f"  - {{id: f, {TOOL}}}\n  - {{id: other, {TOOL}}}\n"), input=[1, 2, 3])
    run.start()
    run.cancel_step("l")
    assert sorted(run.types()) == ["StepCancelled:f[0]", "StepCancelled:f[1]",
                                   "StepCancelled:f[2]", "StepCancelled:l"]
    run.complete("other", 1)
    assert run.state.status is RunStatus.COMPLETED


SUB = ("  - id: child\n    type: subworkflow\n    workflow: inner\n"
       "    input: {n: '${input.n}'}\n    retry: {max_attempts: 2, jitter: 0}\n"
       "    definition:\n      name: inner\n"
       "      steps: [{id: work, type: tool, component: web_search@1}]\n")


def test_a_subworkflow_step_starts_a_child_run_through_the_outbox() -> None:
    run = Run.of(wf(SUB), input={"n": 7})
    decision = run.start()
    [start] = decision.outbox
    assert isinstance(start, StartRun)
    assert start.run_id == child_run_id("run-1", "child", 1) == run.st("child").input[
        "child_run_id"]
    assert (start.parent_run_id, start.parent_step_id, start.input) == ("run-1", "child",
                                                                       {"n": 7})
    assert start.idempotency_key == "run-1:child:1" and start.definition["name"] == "inner"
    assert decision.tasks() == ()  # no executor runs a subworkflow step


def test_a_finished_child_run_completes_the_parent_step() -> None:
    parent = Run.of(wf(SUB), input={"n": 7})
    [start] = parent.start().outbox
    child = decide(None, start, parent.now)
    assert isinstance(child, Accepted)
    [task] = child.tasks()
    done = decide(child.state, CompleteStep(event_id="e", run_id=start.run_id, workflow_id="inner",
                                            occurred_at=parent.now, step_id=task.step_id,
                                            output={"hits": 1}), parent.now)
    assert isinstance(done, Accepted)
    [report] = done.outbox
    assert isinstance(report, CompleteStep)
    assert (report.run_id, report.step_id, report.attempt, report.output) == (
        "run-1", "child", 1, {"work": {"hits": 1}})
    parent.ok(report)
    assert parent.state.status is RunStatus.COMPLETED


def test_a_failed_child_run_fails_the_parent_step_which_may_retry_with_a_new_child() -> None:
    parent = Run.of(wf(SUB), input={"n": 7})
    [start] = parent.start().outbox
    child = decide(None, start, parent.now)
    [task] = child.tasks()
    failed = decide(child.state, FailStep(event_id="e", run_id=start.run_id, workflow_id="inner",
                                          occurred_at=parent.now, step_id=task.step_id,
                                          error_type="Boom", message="no", retryable=False),
                    parent.now)
    [report] = failed.outbox
    assert isinstance(report, FailStep) and report.retryable is True
    parent.ok(report)
    parent.fire("retry", "child")
    [restart] = parent.last.outbox
    assert restart.run_id == child_run_id("run-1", "child", 2)
    assert restart.idempotency_key == "run-1:child:2"


def test_cancelling_the_parent_cancels_the_open_child_run() -> None:
    parent = Run.of(wf(SUB), input={"n": 7})
    parent.start()
    parent.cancel()
    [cancel] = parent.last.outbox
    assert cancel.event_type == "CancelRun" and cancel.run_id == child_run_id("run-1", "child", 1)


EXAMPLE_LIKE = ("  - {id: a, type: transform, expression: '`1`'}\n"
                f"  - {{id: b, {TOOL}, inputs: {{x: '${{steps.a.output}}'}}}}\n"
                f"  - {{id: c, {TOOL}, inputs: {{x: '${{steps.b.output}}'}}}}\n"
                f"  - {{id: side, {TOOL}}}\n")


def test_fork_seed_keeps_the_outputs_of_steps_that_do_not_wait_on_the_fork_step() -> None:
    run = Run.of(wf(EXAMPLE_LIKE))
    run.start()
    for step, out in (("b", "B"), ("c", "C"), ("side", "S")):
        run.complete(step, out)
    assert fork_seed(run.state, "b") == {"a": 1, "side": "S"}
    assert fork_seed(run.state, "a") == {"side": "S"}
    try:
        fork_seed(run.state, "nope")
    except UnknownStep as exc:
        assert "has no step 'nope'" in exc.message
    else:
        raise AssertionError("fork_seed accepted an unknown step")


def test_a_fork_records_seeded_steps_as_done_and_reruns_from_the_fork_step() -> None:
    source = Run.of(wf(EXAMPLE_LIKE))
    source.start()
    for step, out in (("b", "B"), ("c", "C"), ("side", "S")):
        source.complete(step, out)
    fork = Run(definition=source.definition, run_id="run-2")
    cmd = StartRun(**fork.envelope(), definition=fork.definition, forked_from_run_id="run-1",
                   fork_step_id="b")
    decision = start_fork(cmd, fork_seed(source.state, "b"), fork.now)
    assert isinstance(decision, Accepted)
    assert [t.step_id for t in decision.tasks()] == ["b"]
    assert decision.state.step("side").output == "S"
    assert decision.state.forked_from_run_id == "run-1"


def test_a_fork_seed_naming_steps_the_definition_lacks_is_rejected() -> None:
    fork = Run.of(wf(EXAMPLE_LIKE), run_id="run-2")
    cmd = StartRun(**fork.envelope(), definition=fork.definition, forked_from_run_id="run-1",
                   fork_step_id="b")
    decision = start_fork(cmd, {"ghost": 1}, fork.now)
    assert decision.code == "invalid" and "ghost" in decision.reason


def test_a_branch_skipped_whole_does_not_meet_a_join_any() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, join: any, branches: [[a], [b]]}\n"
                    f"  - {{id: a, {TOOL}, when: input.go}}\n  - {{id: b, {TOOL}}}\n"),
                 input={"go": False})
    run.start()
    assert run.status("a") is StepStatus.SKIPPED and run.status("b") is StepStatus.SCHEDULED
    run.complete("b", "B")
    assert run.st("p").output == {"completed": [1], "results": [None, {"b": "B"}]}


def test_a_join_any_whose_branches_all_skip_still_finishes() -> None:
    run = Run.of(wf("  - {id: p, type: parallel, join: any, branches: [[a], [b]]}\n"
                    f"  - {{id: a, {TOOL}, when: input.go}}\n"
                    f"  - {{id: b, {TOOL}, when: input.go}}\n"),
                 input={"go": False})
    run.start()
    assert run.st("p").output == {"completed": [], "results": [None, None]}
    assert run.state.status is RunStatus.COMPLETED
