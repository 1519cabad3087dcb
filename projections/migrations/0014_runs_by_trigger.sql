-- The runs list filtered by trigger (web UI, 100,000 runs): keyset order within one trigger's runs,
-- so a rare trigger reads its own rows rather than scanning and sorting every run.
CREATE INDEX runs_by_trigger ON runs (trigger_id, requested_at DESC, run_id DESC)
    WHERE trigger_id IS NOT NULL;
