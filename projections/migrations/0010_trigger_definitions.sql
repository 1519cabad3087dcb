-- Trigger definitions (TriggerRegistered/Updated/Removed) beside their firings: a trigger's row
-- exists from its registration, so firings may be NULL until it first fires.
ALTER TABLE triggers
    ALTER COLUMN first_fired_at DROP NOT NULL,
    ALTER COLUMN last_fired_at DROP NOT NULL,
    ADD COLUMN definition    jsonb,
    ADD COLUMN enabled       boolean     NOT NULL DEFAULT true,
    ADD COLUMN tenant        text,
    ADD COLUMN project       text,
    ADD COLUMN webhook_path  text,
    ADD COLUMN registered_at timestamptz,
    ADD COLUMN updated_at    timestamptz,
    ADD COLUMN removed_at    timestamptz,
    ADD COLUMN last_due_at   timestamptz,
    ADD COLUMN last_error    text,
    ADD COLUMN last_error_at timestamptz;
CREATE INDEX triggers_listing ON triggers (project, workflow_id, registered_at, trigger_id);
CREATE INDEX triggers_by_webhook_path ON triggers (webhook_path)
    WHERE webhook_path IS NOT NULL AND removed_at IS NULL;
