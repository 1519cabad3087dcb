"""The research agent of research_agent.yaml, written with bend.sdk (a test checks that both
compile to the same definition). Apply it with `bend workflows apply examples/research_agent.py`.
"""

from __future__ import annotations

from typing import TypedDict

from bend.sdk import Defaults, LlmEndpoint, RetryPolicy, Workflow


class Plan(TypedDict):
    """The plan step's output."""

    query: str
    limit: int


class SearchHit(TypedDict):
    """One result of web_search@1."""

    url: str
    title: str


class Search(TypedDict):
    """web_search@1's output."""

    results: list[SearchHit]


class Page(TypedDict):
    """fetch_page@1's output."""

    url: str
    title: str
    text: str


wf = Workflow(
    "research_agent",
    description="Research a topic with web_search and fetch_page, then summarise it with a "
                "model.",
    input_schema={
        "type": "object", "required": ["topic"],
        "properties": {"topic": {"type": "string", "minLength": 1},
                       "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                       "llm_base_url": {"type": "string"}}},
    timeout="10m",
    defaults=Defaults(retry=RetryPolicy(max_attempts=3, initial_interval="1s", backoff=2,
                                        max_interval="30s", jitter=0.2), timeout="2m"),
    llm=LlmEndpoint(base_url="${input.llm_base_url || 'http://127.0.0.1:8700/v1'}",
                    api_key_secret="llm_api_key"),  # noqa: S106 - the secret's name
)

plan = wf.transform("plan", mapping={"query": wf.input.topic,
                                     "limit": "input.limit || `5`"}).returning(Plan)

search = wf.tool("search", "web_search@1", inputs={
    "query": plan.output["query"], "limit": plan.output["limit"]}).returning(Search)

found = wf.condition("found", if_=f"length({search.output['results']:expr}) > `0`",
                     then=["read_pages", "research"], else_=["nothing_found"])

read_pages = wf.parallel("read_pages", join="all",
                         branches=[["read_first"], ["read_second"]])

read_first = wf.tool("read_first", "fetch_page@1",
                     inputs={"url": search.output["results"][0]["url"]}).returning(Page)

read_second = wf.tool(
    "read_second", "fetch_page@1",
    when=f"length({search.output['results']:expr}) > `1`",
    inputs={"url": search.output["results"][1]["url"]},
    retry=RetryPolicy(max_attempts=2, non_retryable=("PageNotFound",))).returning(Page)

pause = wf.delay("pause", duration="2s", after=[read_pages])

research = wf.agent(
    "research", after=[pause], model="bend-scripted-researcher",
    system_prompt="You are a careful researcher. Cite the pages you read.",
    prompt=f"topic: {plan.output['query']}\n"
           f"Pages already read: ${{[{read_first.output['title']:expr}, "
           f"{read_second.output['title']:expr}]}}\n",
    tools=["web_search@1", "fetch_page@1"], max_iterations=6, temperature=0, timeout="3m")

nothing_found = wf.transform("nothing_found",
                             expression="'The search found no sources on this topic.'")

report = wf.transform("report", mapping={
    "topic": wf.input.topic,
    "summary": f"{research.output.answer:expr} || {nothing_found.output:expr}",
    "sources": f"{search.output['results']:expr}[*].url"})

wf.output(report.output)

workflow = wf.build()
