-- The component catalogue (ComponentRegistered): one immutable row per name@version and tenant.
-- Versions are immutable, so the first registration of a name@version wins.
CREATE TABLE components (
    tenant        text        NOT NULL,
    name          text        NOT NULL,
    version       text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    tags          text[]      NOT NULL DEFAULT '{}',
    input_schema  jsonb       NOT NULL,
    output_schema jsonb,
    project       text        NOT NULL,  -- the project that registered it
    registered_by text        NOT NULL,
    registered_at timestamptz NOT NULL,
    event_id      text        NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE INDEX components_by_tag ON components USING gin (tags);
