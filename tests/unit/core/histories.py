"""Recorded histories of the example workflows: JSON records of commands, events and final state.

Regenerate the fixtures (only when a change of decide is intended, and say so in the commit):
    .venv/bin/python tests/unit/core/histories.py
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "histories"
EXAMPLE = ROOT / "examples" / "research_agent.yaml"
GATE = ROOT / "examples" / "release_gate.yaml"
GATED = ROOT / "examples" / "gated_research.yaml"
sys.path.insert(0, str(Path(__file__).parent))

from core_harness import Run  # noqa: E402

from bend.core.commands import (  # noqa: E402
    COMMAND_TYPES, AwaitToolApproval, DecideApproval, RecordLlmCall, RecordToolCall,
)
from bend.core.backtests import override_step  # noqa: E402
from bend.core.events import EVENT_TYPES  # noqa: E402
from bend.core.fork import fork_seed, replayed_outputs  # noqa: E402
from bend.core.state import RunState  # noqa: E402


def to_json(record: Any) -> dict[str, Any]:
    """An event or command as JSON data, with its type name."""
    data: dict[str, Any] = {"type": type(record).__name__}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        data[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return data


def from_json(data: dict[str, Any]) -> Any:
    """The event or command `to_json` wrote."""
    cls = EVENT_TYPES.get(data["type"]) or COMMAND_TYPES[data["type"]]
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if "datetime" in str(f.type) and isinstance(value, str):
                value = datetime.fromisoformat(value)
            fields[f.name] = value
    return cls(**fields)


def summary(state: RunState | None) -> dict[str, Any]:
    """What a recorded history pins about the state it folds to."""
    assert state is not None
    return {
        "status": state.status.value, "seq": state.seq, "output": state.output,
        "error": dataclasses.asdict(state.error) if state.error else None,
        "steps": {s.step_id: {"status": s.status.value, "attempt": s.attempt,
                              "output": s.output, "reason": s.reason,
                              "error": dataclasses.asdict(s.error) if s.error else None}
                  for s in state.steps.values()},
        "timers": sorted(state.timers),
        "decided": len(state.decided),
    }


RESULTS = [{"url": "https://a.example", "title": "A"}, {"url": "https://b.example", "title": "B"}]


def research_completed() -> Run:
    """Search finds two pages; reading the second fails once and is retried; the agent answers."""
    run = Run.of(EXAMPLE.read_text(), input={"topic": "sagas"}, run_id="hist-completed")
    run.start()
    run.started("search")
    run.complete("search", {"query": "sagas", "results": RESULTS})
    run.complete("read_first", {"url": "https://a.example", "title": "A", "text": "..."})
    run.fail("read_second", error_type="Unavailable")
    run.fire("retry", "read_second")
    run.complete("read_second", {"url": "https://b.example", "title": "B", "text": "..."})
    run.fire("delay", "pause")
    run.started("research")
    run.ok(RecordLlmCall(**run.envelope(), step_id="research", attempt=1, call_index=0,
                         model="bend-scripted-researcher", request={"messages": []},
                         response={"choices": []}, prompt_tokens=12, completion_tokens=30))
    run.complete("research", {"answer": "Sagas coordinate long transactions."})
    return run


def research_nothing_found() -> Run:
    """Search finds nothing: the else branch runs and the rest is skipped."""
    run = Run.of(EXAMPLE.read_text(), input={"topic": "nothing"}, run_id="hist-nothing")
    run.start()
    run.complete("search", {"query": "nothing", "results": []})
    return run


def research_agent_timed_out() -> Run:
    """The agent times out on every attempt; the run fails when its retries run out."""
    run = Run.of(EXAMPLE.read_text(), input={"topic": "slow"}, run_id="hist-timeout")
    run.start()
    run.complete("search", {"query": "slow", "results": RESULTS[:1]})
    run.complete("read_first", {"url": "https://a.example", "title": "A", "text": "..."})
    run.fire("delay", "pause")
    for _ in range(2):
        run.fire("step_timeout", "research")
        run.fire("retry", "research")
    run.fire("step_timeout", "research")
    return run


def release_gate_shipped() -> Run:
    """The deploy signals early (kept); the release is approved with an answer, then takes it."""
    run = Run.of(GATE.read_text(), input={"version": "1.4.0"}, run_id="hist-gate")
    run.start()
    run.advance_clock(30)
    run.signal("deployed", {"version": "1.4.0"})
    run.advance_clock(60)
    run.decide_approval("approve_release", answer={"canaries": 2}, comment="go")
    return run


def release_gate_unanswered() -> Run:
    """Nobody decides within the day: the approval's timeout rejects the release."""
    run = Run.of(GATE.read_text(), input={"version": "2.0.0"}, run_id="hist-gate-timeout")
    run.start()
    run.advance_clock(24 * 3600)
    run.fire("step_timeout", "approve_release")
    return run


def _llm_call(run: Run, index: int, calls: str | None) -> None:
    message = {"role": "assistant", "content": None if calls else "Summary.",
               "tool_calls": [{"id": f"call_{index}", "type": "function",
                               "function": {"name": calls, "arguments": "{}"}}] if calls else None}
    run.ok(RecordLlmCall(**run.envelope(), step_id="research", attempt=1, call_index=index,
                         model="bend-scripted-researcher", request={"messages": []},
                         response={"choices": [{"message": message}]}, prompt_tokens=5,
                         completion_tokens=3))


def gated_research_rejected_fetch() -> Run:
    """The agent searches, its fetch_page call waits for a person, who rejects it; the resumed
    attempt hands the rejection to the model, which answers."""
    run = Run.of(GATED.read_text(), input={"topic": "sagas"}, run_id="hist-gated")
    run.start()
    run.started("research")
    _llm_call(run, 0, "web_search")
    run.ok(RecordToolCall(**run.envelope(), step_id="research", attempt=1, call_index=1,
                          tool_call_id="call_0", tool_name="web_search@1",
                          arguments={"query": "sagas"}, result={"results": RESULTS}))
    _llm_call(run, 2, "fetch_page")
    run.advance_clock(5)
    run.ok(AwaitToolApproval(**run.envelope(), step_id="research", attempt=1,
                             tool_call_id="call_2", tool_name="fetch_page@1",
                             arguments={"url": "https://a.example"},
                             checkpoint={"messages": [], "next_call_index": 3}))
    run.advance_clock(600)
    run.ok(DecideApproval(**run.envelope(), step_id="research", approved=False,
                          decided_by="key:k1", comment="not that site",
                          tool_call_id="call_2"))
    run.ok(RecordToolCall(**run.envelope(), step_id="research", attempt=1, call_index=3,
                          tool_call_id="call_2", tool_name="fetch_page@1",
                          arguments={"url": "https://a.example"}, result=None,
                          error="the call was rejected by key:k1: not that site; it did not run"))
    _llm_call(run, 4, None)
    run.complete("research", {"answer": "Summary."})
    return run


def research_backtested() -> Run:
    """A backtest of research_completed from `search` with its query changed: the search runs
    again; the tools, the delay and the agent after it take their recorded outputs."""
    source = research_completed()
    assert source.state is not None
    changed = override_step(source.definition, "search", {"inputs": {
        "query": "${steps.plan.output.query} 2026", "limit": "${steps.plan.output.limit}"}})
    run = Run(definition=changed, input=source.input, run_id="hist-backtest", now=source.now)
    run.start(forked_from_run_id=source.run_id, fork_step_id="search",
              seed=fork_seed(source.state, "search"), backtest_id="bt-hist",
              replayed=replayed_outputs(source.state, "search"))
    run.complete("search", {"query": "sagas 2026", "results": RESULTS})
    return run


SCENARIOS = {"research_completed": research_completed,
             "research_nothing_found": research_nothing_found,
             "research_agent_timed_out": research_agent_timed_out,
             "release_gate_shipped": release_gate_shipped,
             "release_gate_unanswered": release_gate_unanswered,
             "gated_research_rejected_fetch": gated_research_rejected_fetch,
             "research_backtested": research_backtested}
WORKFLOWS = {"release_gate_shipped": GATE, "release_gate_unanswered": GATE,
             "gated_research_rejected_fetch": GATED}


def record(name: str) -> dict[str, Any]:
    """The JSON record of one scenario, as the fixture holds it."""
    run = SCENARIOS[name]()
    commands = [to_json(cmd) for cmd in run.sent]
    return {"description": SCENARIOS[name].__doc__, "workflow": WORKFLOWS.get(name, EXAMPLE).name,
            "commands": commands, "events": [to_json(e) for e in run.log],
            "final_state": summary(run.state)}


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for scenario in sys.argv[1:] or SCENARIOS:  # name the new ones: the others stay as recorded
        path = FIXTURES / f"{scenario}.json"
        path.write_text(json.dumps(record(scenario), indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")
