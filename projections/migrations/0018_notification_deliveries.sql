-- The notifier's delivery log: one row per delivery a run event owes (its id derives from the
-- event's), written by the notifier, not projected from the log: a rebuild carries it over.
CREATE TABLE notification_deliveries (
    delivery_id     text        PRIMARY KEY,
    run_id          text        NOT NULL,
    project         text        NOT NULL,
    workflow_id     text        NOT NULL,
    event           text        NOT NULL,  -- run_failed | run_finished | approval_waiting
    event_id        text        NOT NULL,
    channel         text        NOT NULL,  -- webhook | email
    target          text        NOT NULL,  -- the URL, or the mailboxes
    status          text        NOT NULL,  -- sending | delivered | failed
    attempts        integer     NOT NULL DEFAULT 0,
    response_status integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX notification_deliveries_by_run ON notification_deliveries (run_id, created_at);
CREATE INDEX notification_deliveries_by_project ON notification_deliveries
    (project, created_at DESC);
