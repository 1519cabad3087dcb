-- Steps of a run (latest attempt's view) and each attempt on its own.
CREATE TABLE steps (
    run_id        text        NOT NULL,
    step_id       text        NOT NULL,
    node_type     text        NOT NULL DEFAULT '',
    status        text        NOT NULL,  -- scheduled | running | succeeded | failed | retrying | timed_out | skipped | cancelled
    attempts      integer     NOT NULL DEFAULT 0,
    input         jsonb,
    output        jsonb,
    error_type    text,
    error_message text,
    reason        text,
    worker_id     text,
    timeout_ms    bigint,
    next_retry_at timestamptz,
    scheduled_at  timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint,
    PRIMARY KEY (run_id, step_id)
);

CREATE TABLE step_attempts (
    run_id        text        NOT NULL,
    step_id       text        NOT NULL,
    attempt       integer     NOT NULL,
    status        text        NOT NULL,
    input         jsonb,
    output        jsonb,
    error_type    text,
    error_message text,
    retryable     boolean,
    worker_id     text,
    idempotency_key text,
    scheduled_at  timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint,
    PRIMARY KEY (run_id, step_id, attempt)
);
