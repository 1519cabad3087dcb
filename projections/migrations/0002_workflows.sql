-- Workflows and their immutable versions (WorkflowRegistered, WorkflowVersioned, status events).
CREATE TABLE workflows (
    workflow_id    text        PRIMARY KEY,
    name           text        NOT NULL,
    description    text        NOT NULL DEFAULT '',
    status         text        NOT NULL,  -- active | paused | deleted
    latest_version integer     NOT NULL,
    tenant         text        NOT NULL,
    project        text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    deleted_at     timestamptz
);
CREATE INDEX workflows_listing ON workflows (project, created_at DESC, workflow_id DESC);

CREATE TABLE workflow_versions (
    workflow_id     text        NOT NULL,
    version         integer     NOT NULL,
    definition      jsonb       NOT NULL,
    definition_hash text        NOT NULL,
    created_at      timestamptz NOT NULL,
    event_id        text        NOT NULL,
    PRIMARY KEY (workflow_id, version)
);
