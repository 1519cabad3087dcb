-- Records no processor could handle, kept whole so they can be inspected and re-driven.
CREATE TABLE dead_letters (
    event_id         text        PRIMARY KEY,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    error_type       text        NOT NULL,
    reason           text        NOT NULL,
    key              bytea,
    payload          bytea       NOT NULL,
    occurred_at      timestamptz NOT NULL
);
CREATE INDEX dead_letters_by_source ON dead_letters (source_topic, source_partition, source_offset);
