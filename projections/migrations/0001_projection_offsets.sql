-- Where the projector is in each partition: the next offset to apply, written in the same
-- transaction as the rows that offset's records produced.
CREATE TABLE projection_offsets (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- Records the projector could not decode or apply; skipped so the rest of the log still flows.
CREATE TABLE projection_errors (
    topic      text    NOT NULL,
    partition  integer NOT NULL,
    "offset"   bigint  NOT NULL,
    error_type text    NOT NULL,
    reason     text    NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
