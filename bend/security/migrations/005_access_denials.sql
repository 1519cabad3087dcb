-- API requests refused for want of credentials (401) or of permission (403), for the audit log
-- (GET /api/audit). Not a projection: denials are no events of the log. `project` is the
-- caller's when it authenticated (403), else NULL (401: shown to installation admins only).
CREATE TABLE sec_access_denials (
    denial_id   bigserial   PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    project     text,
    actor       text        NOT NULL,
    status      smallint    NOT NULL,
    code        text        NOT NULL,
    method      text        NOT NULL,
    path        text        NOT NULL,
    client_ip   text        NOT NULL
);
CREATE INDEX sec_access_denials_by_project ON sec_access_denials (project, occurred_at DESC);
CREATE INDEX sec_access_denials_by_time ON sec_access_denials (occurred_at DESC);
