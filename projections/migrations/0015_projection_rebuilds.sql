-- Projection rebuilds (POST /api/replay/projections): each one's status, written by the process
-- running it, so every API replica answers for it. `heartbeat_at` moves while it runs: one whose
-- heartbeat stopped is reported abandoned (its process died). At most one is unfinished.
-- Not a projection: a full rebuild carries this table over to the switched-in schema.
CREATE TABLE projection_rebuilds (
    rebuild_id        text        PRIMARY KEY,
    phase             text        NOT NULL,  -- queued | rebuilding | catching_up | verifying | switched | refused | failed | abandoned
    only_projection   text,
    live_schema       text        NOT NULL,
    records           bigint      NOT NULL DEFAULT 0,
    total             bigint      NOT NULL DEFAULT 0,
    events_per_second double precision NOT NULL DEFAULT 0,
    differences       jsonb       NOT NULL DEFAULT '[]',
    error             text,
    status            jsonb       NOT NULL,  -- the whole status, as GET /api/replay/projections/{id} shows it
    owner             text        NOT NULL,  -- host:pid of the process running it
    started_at        timestamptz NOT NULL,
    heartbeat_at      timestamptz NOT NULL,
    finished_at       timestamptz
);
CREATE UNIQUE INDEX projection_rebuilds_one_unfinished ON projection_rebuilds ((true))
    WHERE finished_at IS NULL;
CREATE INDEX projection_rebuilds_by_time ON projection_rebuilds (started_at DESC);
