-- Backtests (BacktestRequested on the workflows topic): the change tried on a step, and each
-- source run beside the backtest run forked from it. A backtest's runs carry its id.
ALTER TABLE runs ADD COLUMN backtest_id text;
CREATE INDEX runs_by_backtest ON runs (backtest_id) WHERE backtest_id IS NOT NULL;

CREATE TABLE backtests (
    backtest_id      text        PRIMARY KEY,
    workflow_id      text        NOT NULL,
    workflow_version integer     NOT NULL,
    step_id          text        NOT NULL,
    changes          jsonb       NOT NULL,
    selection        jsonb,
    live_downstream  boolean     NOT NULL DEFAULT false,
    actor            text        NOT NULL DEFAULT '',
    tenant           text        NOT NULL,
    project          text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    event_id         text        NOT NULL
);
CREATE INDEX backtests_by_project ON backtests (project, requested_at DESC);

CREATE TABLE backtest_runs (
    backtest_id   text    NOT NULL,
    source_run_id text    NOT NULL,
    run_id        text    NOT NULL,
    position      integer NOT NULL,
    PRIMARY KEY (backtest_id, source_run_id)
);
