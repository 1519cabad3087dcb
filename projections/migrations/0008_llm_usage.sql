-- LLM calls per run and model: counts, tokens and latency, for cost and speed views.
CREATE TABLE llm_usage (
    run_id            text    NOT NULL,
    model             text    NOT NULL,
    workflow_id       text    NOT NULL,
    calls             bigint  NOT NULL DEFAULT 0,
    prompt_tokens     bigint  NOT NULL DEFAULT 0,
    completion_tokens bigint  NOT NULL DEFAULT 0,
    latency_ms        bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, model)
);
CREATE INDEX llm_usage_by_workflow ON llm_usage (workflow_id);
