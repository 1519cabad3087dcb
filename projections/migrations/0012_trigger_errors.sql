-- TriggerFailed: each failure of a trigger (one row per event) and its count on the trigger.
CREATE TABLE trigger_errors (
    event_id    text        PRIMARY KEY,
    trigger_id  text        NOT NULL,
    stage       text        NOT NULL,
    error       text        NOT NULL,
    source      text,
    failed_at   timestamptz NOT NULL
);
CREATE INDEX trigger_errors_by_trigger ON trigger_errors (trigger_id, failed_at DESC);

ALTER TABLE triggers
    ADD COLUMN error_count      bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_error_stage text;
