-- Triggers as seen firing, and each firing (one per dedupe key).
CREATE TABLE triggers (
    trigger_id    text        PRIMARY KEY,
    workflow_id   text        NOT NULL,
    trigger_type  text        NOT NULL,
    firings       bigint      NOT NULL DEFAULT 0,
    first_fired_at timestamptz NOT NULL,
    last_fired_at timestamptz NOT NULL
);
CREATE INDEX triggers_by_workflow ON triggers (workflow_id);

CREATE TABLE trigger_firings (
    event_id    text        PRIMARY KEY,
    trigger_id  text        NOT NULL,
    dedupe_key  text        NOT NULL,
    workflow_id text        NOT NULL,
    run_id      text,
    due_at      timestamptz,
    fired_at    timestamptz NOT NULL,
    input       jsonb,
    UNIQUE (trigger_id, dedupe_key)
);
