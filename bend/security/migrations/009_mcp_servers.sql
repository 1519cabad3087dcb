-- MCP servers registered per project: agents name them in `mcp_servers`. Header values may
-- name secrets (`{{ secrets.NAME }}`), filled in by executors; they never hold the values.
CREATE TABLE sec_mcp_servers (
    project text NOT NULL,
    name text NOT NULL,
    url text NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    tools text[],
    timeout_s double precision,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (project, name)
);
