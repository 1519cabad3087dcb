-- What admins did to the project's keys and secrets (created, revoked, set, deleted), for the
-- audit log (GET /api/audit, /ui/audit). Not a projection: keys and secrets live here, not in
-- the event log. `detail` never holds a key or a secret value.
CREATE TABLE sec_admin_actions (
    action_id   bigserial   PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    project     text        NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    target      text        NOT NULL,
    client_ip   text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX sec_admin_actions_by_project ON sec_admin_actions (project, occurred_at DESC);
