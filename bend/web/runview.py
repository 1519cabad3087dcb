"""What a run's page shows, read as the API reads it: the run, its step graph and timeline,
its event log, each step's inputs, outputs and LLM calls, and what it waits on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bend.api.context import ApiContext
from bend.api.graph import run_graph
from bend.api.models.executions import Graph
from bend.security.redact import Redactor
from bend.web.edges import edge_roles
from bend.web.layout import GraphLayout, layout
from bend.web.timeline import Attempt, TimelineLayout, attempts_of, place
from bend.web.waiting import Reason, waiting_on
from projections.queries import runs as queries

__all__ = ["EVENT_LIMIT", "RunView", "StepPanel", "read_run_view"]

EVENT_LIMIT = 2000  # the page shows this many events; the API pages through the rest


@dataclass(slots=True)
class StepPanel:
    """One step's detail: its latest attempt's row, every attempt, LLM calls and tool calls."""

    row: dict[str, Any]
    llm_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(slots=True)
class RunView:
    """Everything the run page draws."""

    run: dict[str, Any]
    graph: Graph
    graph_layout: GraphLayout
    timeline: TimelineLayout
    events: list[dict[str, Any]]
    more_events: bool
    panels: list[StepPanel]
    usage: list[dict[str, Any]]
    waiting: list[Reason]
    failed_steps: list[str]
    step_ids: list[str]
    edge_roles: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def last_seq(self) -> int:
        """The highest seq shown."""
        return self.events[-1]["seq"] if self.events else 0


def _llm_call(payload: dict[str, Any]) -> dict[str, Any]:
    """An AgentLlmCallRecorded payload as the page lists it."""
    request = payload.get("request") or {}
    response = payload.get("response") or {}
    message = response.get("message") if isinstance(response, dict) else None
    if message is None and isinstance(response, dict) and isinstance(response.get("content"),
                                                                      list):
        blocks = [b for b in response["content"] if isinstance(b, dict)]  # Messages API
        text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        message = {"content": text or None,
                   "tool_calls": [b for b in blocks if b.get("type") == "tool_use"]}
    if message is None and isinstance(response, dict):
        choices = response.get("choices") or []
        message = (choices[0] or {}).get("message") if choices else None
    message = message if isinstance(message, dict) else {}
    return {
        "attempt": payload.get("attempt"), "index": payload.get("call_index"),
        "model": payload.get("model"),
        "prompt": request.get("messages", request) if isinstance(request, dict) else request,
        "response": message.get("content") if message.get("content") is not None
        else response,
        "tool_calls": message.get("tool_calls") or [],
        "prompt_tokens": payload.get("prompt_tokens", 0),
        "completion_tokens": payload.get("completion_tokens", 0),
        "latency_ms": payload.get("latency_ms", 0),
    }


def _ends(run: dict[str, Any], events: list[dict[str, Any]], now: datetime
          ) -> tuple[datetime, datetime]:
    start = run.get("requested_at") or (events[0]["occurred_at"] if events else now)
    if events:
        start = min(start, events[0]["occurred_at"])
    if run["status"] in queries.FINISHED:
        end = run.get("finished_at") or (events[-1]["occurred_at"] if events else now)
        end = max(end, events[-1]["occurred_at"]) if events else end
    else:
        end = now
    return start, end


async def read_run_view(ctx: ApiContext, run: dict[str, Any], redactor: Redactor, *,
                        explain: bool = True) -> RunView:
    """The run page's content for `run` (a `runs` row of the caller's project); `explain`
    asks the explain service what an unfinished run waits on (else the read models tell)."""
    run_id = run["run_id"]
    steps = await queries.steps(ctx.pool, run_id)
    graph = run_graph(run, steps)
    events = await queries.events(ctx.pool, run_id, limit=EVENT_LIMIT + 1)
    more = len(events) > EVENT_LIMIT
    events = events[:EVENT_LIMIT]
    now = datetime.now(timezone.utc)
    start, end = _ends(run, events, now)
    panels = {s["step_id"]: StepPanel(s) for s in steps}
    attempts = attempts_of(events)
    for a in attempts:
        if a.attempt and a.step_id in panels:
            panels[a.step_id].attempts.append(a)
    for e in events:
        panel = panels.get(e["step_id"] or "")
        if panel is None:
            continue
        if e["event_type"] == "AgentLlmCallRecorded":
            panel.llm_calls.append(redactor(_llm_call(e["payload"])))
        elif e["event_type"] == "AgentToolCallRecorded":
            p = e["payload"]
            panel.tool_calls.append(redactor({k: p.get(k) for k in (
                "attempt", "call_index", "tool_name", "arguments", "result", "error",
                "latency_ms")}))
    return RunView(
        run=run, graph=graph,
        graph_layout=layout([n.id for n in graph.nodes],
                            [(e.source, e.target, e.kind) for e in graph.edges]),
        timeline=place(attempts, start, end),
        events=events, more_events=more, panels=list(panels.values()),
        usage=await queries.usage(ctx.pool, run_id),
        waiting=await waiting_on(ctx.pool, run, steps, now,
                                   ctx.settings if explain else None),
        failed_steps=[n.id for n in graph.nodes if n.status in ("failed", "timed_out")],
        step_ids=[n.id for n in graph.nodes],
        edge_roles=edge_roles(run.get("definition"),
                              [(e.source, e.target, e.kind) for e in graph.edges]))
