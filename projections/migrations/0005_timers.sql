-- Durable timers of runs: set, then fired (or left pending).
CREATE TABLE timers (
    timer_id text        PRIMARY KEY,
    run_id   text        NOT NULL,
    step_id  text,
    purpose  text        NOT NULL,
    status   text        NOT NULL,  -- set | fired
    fire_at  timestamptz,
    set_at   timestamptz,
    fired_at timestamptz
);
CREATE INDEX timers_pending ON timers (fire_at) WHERE status = 'set';
CREATE INDEX timers_by_run ON timers (run_id);
