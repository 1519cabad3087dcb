-- Who did what, from the events that carry an actor or change a workflow or run's lifecycle.
CREATE TABLE audit (
    event_id    text        PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    workflow_id text        NOT NULL,
    workflow_version integer NOT NULL,
    run_id      text,
    tenant      text        NOT NULL,
    project     text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_by_time ON audit (project, occurred_at DESC);
CREATE INDEX audit_by_workflow ON audit (workflow_id, occurred_at DESC);
