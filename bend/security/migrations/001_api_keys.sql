-- API keys: only an HMAC of each key's secret is kept; a key belongs to one project.
CREATE TABLE sec_api_keys (
    key_id       text        PRIMARY KEY,
    project      text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    role         text        NOT NULL CHECK (role IN ('admin', 'editor', 'operator', 'viewer')),
    secret_hash  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL DEFAULT '',
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX sec_api_keys_by_project ON sec_api_keys (project, created_at);
