-- Token buckets shared by every API replica (BEND_SECURITY__RATE_LIMIT_STORE=postgres): one row
-- per client address or key. UNLOGGED: a crash forgets them, which only refills the buckets.
CREATE UNLOGGED TABLE sec_rate_buckets (
    key          text             PRIMARY KEY,
    tokens       double precision NOT NULL,
    as_of        timestamptz      NOT NULL,
    last_allowed boolean          NOT NULL
);
CREATE INDEX sec_rate_buckets_by_age ON sec_rate_buckets (as_of);
