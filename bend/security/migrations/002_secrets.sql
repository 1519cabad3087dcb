-- Secrets, encrypted at rest: nonce (12 bytes) || AES-256-GCM ciphertext and tag, bound to
-- (project, name) as associated data so a row copied elsewhere does not decrypt.
CREATE TABLE sec_secrets (
    project         text        NOT NULL,
    name            text        NOT NULL,
    ciphertext      bytea       NOT NULL,
    key_fingerprint text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (project, name)
);
