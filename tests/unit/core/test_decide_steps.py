"""decide for each kind of step: what is evaluated inline, what is scheduled, what is skipped."""

from __future__ import annotations

from datetime import timedelta

from core_harness import T0, Run, wf

from bend.core.commands import StartRun
from bend.core.decide import Accepted, decide
from bend.core.state import RunStatus, StepStatus

TOOL = "component: web_search@1"


def test_start_run_requests_starts_and_schedules_the_ready_executor_steps() -> None:
    run = Run.of(wf(f"  - {{id: a, type: tool, {TOOL}, inputs: {{query: '${{input.q}}'}}}}\n"
                    f"  - {{id: b, type: tool, {TOOL}, inputs: {{query: x}}, after: [a]}}\n"),
                 input={"q": "kafka"})
    decision = run.start()
    assert run.types() == ["RunRequested", "RunStarted", "StepScheduled:a"]
    [task] = decision.tasks()
    assert task.input == {"component": "web_search@1", "inputs": {"query": "kafka"}}
    assert task.idempotency_key == "run-1:a:1" and task.attempt == 1
    assert [e.seq for e in decision.events] == [1, 2, 3]


def test_events_carry_the_commands_causation_and_the_runs_correlation() -> None:
    run = Run.of(wf("  - {id: a, type: transform, expression: input}\n"))
    decision = run.start()
    cmd_id = decision.events[0].causation_id
    assert all(e.causation_id == cmd_id for e in decision.events)
    assert all(e.correlation_id == "run-1" for e in decision.events)
    assert len({e.event_id for e in decision.events}) == len(decision.events)


def test_decide_is_pure_the_same_command_on_the_same_state_gives_the_same_events() -> None:
    run = Run.of(wf("  - {id: a, type: transform, expression: input}\n"))
    cmd = StartRun(**run.envelope(), input={"x": 1}, definition=run.definition)
    first, second = decide(None, cmd, T0), decide(None, cmd, T0)
    assert isinstance(first, Accepted) and first.events == second.events


def test_transforms_and_conditions_are_evaluated_inline_and_the_run_completes() -> None:
    run = Run.of(wf(
        "  - {id: a, type: transform, mapping: {double: 'input.n', name: 'input.name'}}\n"
        "  - {id: c, type: condition, if: 'steps.a.output.double', then: ['yes'], else: ['no']}\n"
        "  - {id: 'yes', type: transform, expression: \"'took then'\"}\n"
        "  - {id: 'no', type: transform, expression: \"'took else'\"}\n"),
        input={"n": 2, "name": "x"})
    run.start()
    assert run.types() == [
        "RunRequested", "RunStarted", "StepScheduled:a", "StepSucceeded:a", "StepScheduled:c",
        "StepSucceeded:c", "StepScheduled:yes", "StepSucceeded:yes", "StepSkipped:no",
        "RunCompleted"]
    assert run.st("c").output == {"branch": "then", "value": 2}
    assert run.state.output == {"yes": "took then", "no": None}
    assert run.state.status is RunStatus.COMPLETED


def test_a_switch_takes_the_matching_case_or_the_default() -> None:
    steps = ("  - {id: s, type: condition, switch: input.kind, cases: {a: [x], 2: [y]}, "
             "default: [z]}\n"
             "  - {id: x, type: transform, expression: \"'x'\"}\n"
             "  - {id: y, type: transform, expression: \"'y'\"}\n"
             "  - {id: z, type: transform, expression: \"'z'\"}\n")
    for kind, taken in (("a", "x"), (2, "y"), ("other", "z")):
        run = Run.of(wf(steps), input={"kind": kind})
        run.start()
        assert [s for s in "xyz" if run.status(s) is StepStatus.SUCCEEDED] == [taken]


def test_skips_propagate_to_steps_that_depend_only_on_skipped_steps() -> None:
    run = Run.of(wf(
        "  - {id: c, type: condition, if: input.go, then: [t1], else: [e1]}\n"
        "  - {id: t1, type: transform, expression: \"'t1'\"}\n"
        "  - {id: t2, type: transform, expression: steps.t1.output}\n"
        "  - {id: e1, type: transform, expression: \"'e1'\"}\n"
        "  - {id: join, type: transform, expression: 'steps.t2.output || steps.e1.output'}\n"),
        input={"go": False})
    run.start()
    assert run.status("t1") is StepStatus.SKIPPED
    assert run.status("t2") is StepStatus.SKIPPED  # its only dependency was skipped
    assert "skipped" in run.st("t2").reason
    assert run.st("join").output == "e1"  # one dependency ran: the join runs


def test_a_false_when_guard_skips_the_step_and_its_only_dependents() -> None:
    run = Run.of(wf(f"  - {{id: a, type: tool, {TOOL}, when: input.go}}\n"
                    f"  - {{id: b, type: tool, {TOOL}, after: [a]}}\n"), input={"go": False})
    run.start()
    assert run.types() == ["RunRequested", "RunStarted", "StepSkipped:a", "StepSkipped:b",
                           "RunCompleted"]
    assert run.st("a").reason == "its `when` guard is false"


def test_an_expression_that_fails_on_the_data_fails_the_step_and_the_run() -> None:
    run = Run.of(wf("  - {id: a, type: transform, expression: 'length(input.n)'}\n"),
                 input={"n": 3})
    run.start()
    assert run.types()[-3:] == ["StepScheduled:a", "StepFailed:a", "RunFailed:a"]
    assert run.state.error.error_type == "ExpressionError"
    assert run.st("a").error.retryable is False


def test_an_executor_step_whose_input_fails_to_render_is_not_handed_out() -> None:
    run = Run.of(wf(f"  - {{id: a, type: tool, {TOOL}, inputs: {{n: '${{length(input.n)}}'}}}}\n"),
                 input={"n": 3})
    decision = run.start()
    assert "StepFailed:a" in run.types() and decision.tasks() == ()
    assert run.state.status is RunStatus.FAILED


def test_a_delay_sets_a_timer_and_succeeds_when_it_fires() -> None:
    run = Run.of(wf("  - {id: d, type: delay, duration: 90s}\n"
                    "  - {id: after, type: transform, expression: steps.d.output, after: [d]}\n"))
    decision = run.start()
    [timer] = decision.timers()
    assert (timer.purpose, timer.fire_at, timer.step_id) == ("delay", T0 + timedelta(seconds=90),
                                                             "d")
    run.fire("delay", "d")
    assert run.types() == ["TimerFired:d", "StepSucceeded:d", "StepScheduled:after",
                           "StepSucceeded:after", "RunCompleted"]
    assert run.st("d").output == {"waited_until": "2025-01-01T00:01:30+00:00"}


def test_a_delay_until_a_past_time_succeeds_at_once() -> None:
    run = Run.of(wf("  - {id: d, type: delay, until: input.at}\n"),
                 input={"at": "2024-12-31T00:00:00Z"})
    run.start()
    assert run.state.status is RunStatus.COMPLETED and not run.state.timers


def test_a_delay_until_a_future_time_waits_for_it() -> None:
    run = Run.of(wf("  - {id: d, type: delay, until: input.at}\n"),
                 input={"at": "2025-01-01T06:00:00+00:00"})
    run.start()
    assert run.state.timers[run.timer("delay", "d")].fire_at == T0 + timedelta(hours=6)


def test_agent_and_http_steps_are_scheduled_with_their_rendered_configuration() -> None:
    run = Run.of(wf(
        "  - id: ask\n    type: agent\n    model: m\n    prompt: 'topic: ${input.topic}'\n"
        "    tools: [web_search@1]\n    timeout: 30s\n"
        "  - id: call\n    type: http\n    method: post\n"
        "    url: 'https://x.example/${input.topic}'\n"
        "    headers: {X-Topic: '${input.topic}'}\n    body: {about: '${input.topic}'}\n",
        extra="llm: {base_url: 'http://127.0.0.1:9/v1', api_key_secret: k}\n"),
        input={"topic": "sagas"})
    decision = run.start()
    ask, call = decision.tasks()
    assert ask.input == {"model": "m", "prompt": "topic: sagas", "system_prompt": None,
                         "tools": ["web_search@1"], "max_iterations": 10, "temperature": None,
                         "llm": {"base_url": "http://127.0.0.1:9/v1", "api_key_secret": "k",
                                 "timeout_s": None}}
    assert ask.timeout_ms == 30_000 and call.timeout_ms is None
    assert call.input == {"method": "POST", "url": "https://x.example/sagas",
                          "headers": {"X-Topic": "sagas"}, "query": {},
                          "body": {"about": "sagas"}}
    assert [t.purpose for t in decision.timers()] == ["step_timeout"]


def test_an_executor_step_runs_reports_started_and_completes() -> None:
    run = Run.of(wf(f"  - {{id: a, type: tool, {TOOL}}}\n"))
    run.start()
    run.started("a")
    assert run.status("a") is StepStatus.RUNNING and run.st("a").worker_id == "w1"
    run.complete("a", {"hits": 3})
    assert run.state.status is RunStatus.COMPLETED and run.state.output == {"a": {"hits": 3}}


def test_the_run_output_expression_reads_every_top_level_step() -> None:
    run = Run.of(wf("  - {id: a, type: transform, expression: '`1`'}\n"
                    "  - {id: b, type: transform, expression: '`2`'}\n",
                    extra="output: '[steps.a.output, steps.b.output, input.z]'\n"),
                 input={"z": 3})
    run.start()
    assert run.state.output == [1, 2, 3]


def test_a_run_with_an_invalid_definition_is_recorded_as_failed() -> None:
    run = Run(definition={"name": "t", "steps": [{"id": "a", "type": "transform",
                                                  "expression": "steps.ghost.output"}]})
    run.start()
    assert run.types() == ["RunRequested", "RunFailed"]
    assert run.state.error.error_type == "InvalidDefinition"
    assert "unknown step 'ghost'" in run.state.error.message
    assert run.state.definition is None


def test_a_run_without_a_definition_fails_saying_the_sender_must_attach_it() -> None:
    run = Run(definition=None)
    run.start()
    assert "must attach" in run.state.error.message


def test_input_that_breaks_the_input_schema_fails_the_run() -> None:
    run = Run.of(wf("  - {id: a, type: transform, expression: input}\n",
                    extra="input_schema: {type: object, required: [topic]}\n"), input={})
    run.start()
    assert run.state.error.error_type == "InvalidInput"
    assert "'topic' is a required property" in run.state.error.message


def test_a_workflow_timeout_sets_a_run_timer_at_start() -> None:
    run = Run.of(wf(f"  - {{id: a, type: tool, {TOOL}}}\n", extra="timeout: 1h\n"))
    decision = run.start()
    assert [(t.purpose, t.fire_at) for t in decision.timers()] == [
        ("run_timeout", T0 + timedelta(hours=1))]


def test_recorded_llm_and_tool_calls_become_events_of_the_open_step() -> None:
    from bend.core.commands import RecordLlmCall, RecordToolCall

    run = Run.of(wf("  - {id: a, type: agent, model: m, prompt: p}\n",
                    extra="llm: {base_url: 'http://127.0.0.1:9/v1'}\n"))
    run.start()
    run.ok(RecordLlmCall(**run.envelope(), step_id="a", attempt=1, call_index=0, model="m",
                         request={"messages": []}, response={"choices": []}))
    run.ok(RecordToolCall(**run.envelope(), step_id="a", attempt=1, call_index=1,
                          tool_call_id="t1", tool_name="web_search", arguments={"q": 1},
                          result={"r": 2}))
    assert [e.event_type for e in run.log[-2:]] == ["AgentLlmCallRecorded",
                                                    "AgentToolCallRecorded"]
    assert run.send(RecordLlmCall(**run.envelope(), step_id="a", attempt=2, call_index=0,
                                  model="m")).code == "stale"


def test_input_schema_errors_name_where_in_the_input_they_are() -> None:
    run = Run.of(wf("  - {id: a, type: transform, expression: input}\n",
                    extra="input_schema: {type: object, properties: {items: {type: array, "
                          "items: {type: integer}}}}\n"), input={"items": [1, "two"]})
    run.start()
    assert run.state.error.message.endswith("items/1: 'two' is not of type 'integer'")
