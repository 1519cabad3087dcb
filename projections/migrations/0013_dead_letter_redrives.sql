-- Dead letters keep the record's headers, and show when and by whom they were re-driven
-- (DeadLetterRedriven); a second re-drive is refused unless forced, so it counts them.
ALTER TABLE dead_letters
    ADD COLUMN headers          jsonb,
    ADD COLUMN redriven_at      timestamptz,
    ADD COLUMN redriven_by      text,
    ADD COLUMN redrive_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN redriven_to      text;  -- topic:partition:offset of the last re-driven copy
CREATE INDEX dead_letters_by_time ON dead_letters (occurred_at DESC, event_id DESC);
CREATE INDEX dead_letters_by_error ON dead_letters (error_type, occurred_at DESC);
