-- Verified OCSP responses from upstream responders, one per CertID, so that a restart or
-- another replica serves them without fetching again. The CertID parts are kept as
-- columns so the prefetcher can ask again when refresh_at (half of the response's
-- thisUpdate → nextUpdate window) has passed.
CREATE TABLE ocsp_responses (
    cert_id TEXT PRIMARY KEY,
    hash_algorithm TEXT NOT NULL,
    issuer_name_hash BYTEA NOT NULL,
    issuer_key_hash BYTEA NOT NULL,
    serial BYTEA NOT NULL,
    response_der BYTEA NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    produced_at BIGINT NOT NULL,
    refresh_at BIGINT NOT NULL,
    responder_url TEXT NOT NULL,
    fetched_at BIGINT NOT NULL
);
CREATE INDEX ocsp_responses_refresh_at ON ocsp_responses (refresh_at);
