-- API clients of the HTTP edge (OAuth2 client credentials). Only a hash of the secret
-- is kept: secrets are 256-bit random values, so SHA-256 without a KDF is enough.
CREATE TABLE api_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    wmis TEXT NOT NULL,
    provider_ids TEXT NOT NULL,
    operator_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0
);
