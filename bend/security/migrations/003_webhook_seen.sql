-- Webhook signatures already accepted, kept until their timestamp leaves the tolerance window.
CREATE TABLE sec_webhook_seen (
    key        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sec_webhook_seen_by_expiry ON sec_webhook_seen (expires_at);
