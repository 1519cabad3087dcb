-- Runs (one row per run) and every run's event log, in seq order.
CREATE TABLE runs (
    run_id              text        PRIMARY KEY,
    workflow_id         text        NOT NULL,
    workflow_version    integer     NOT NULL,
    status              text        NOT NULL,  -- queued | pending | running | completed | failed | cancelled
    input               jsonb,
    output              jsonb,
    definition          jsonb,
    error_type          text,
    error_message       text,
    failed_step_id      text,
    idempotency_key     text,
    trigger_id          text,
    parent_run_id       text,
    parent_step_id      text,
    forked_from_run_id  text,
    fork_step_id        text,
    cancel_requested_at timestamptz,
    cancel_requested_by text,
    cancel_reason       text,
    tenant              text        NOT NULL,
    project             text        NOT NULL,
    requested_at        timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    duration_ms         bigint,
    last_seq            bigint      NOT NULL DEFAULT 0,
    last_event_at       timestamptz
);
CREATE INDEX runs_listing ON runs (project, requested_at DESC, run_id DESC);
CREATE INDEX runs_by_workflow ON runs (workflow_id, requested_at DESC, run_id DESC);
CREATE INDEX runs_by_status ON runs (status, requested_at DESC, run_id DESC);
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE run_events (
    event_id    text        PRIMARY KEY,
    run_id      text        NOT NULL,
    seq         bigint      NOT NULL,
    event_type  text        NOT NULL,
    step_id     text,
    occurred_at timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL
);
-- The orchestrator sequences a run; a second record at a seq is a redelivery, never applied.
CREATE UNIQUE INDEX run_events_seq ON run_events (run_id, seq) WHERE seq > 0;
CREATE INDEX run_events_by_run ON run_events (run_id, seq, occurred_at);
