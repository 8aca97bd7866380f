-- pnc extension (eMSP PKI): a contract certificate's renewal as its eMSP supplied it,
-- sealed to the old certificate [V2G2-821] and pre-signed by pnc's CPS, waiting for the
-- EV's CertificateUpdateReq. Keyed by the old certificate's SHA-256 (upper-case hex).
-- renewal_pb is the whole renewed contract (chain and signed data per V2G root);
-- applied_at is set when an EV took it (the row stays, so a retry gets the same answer).
CREATE TABLE contract_renewals (
    old_fingerprint TEXT PRIMARY KEY,
    pcid_key TEXT NOT NULL,
    emaid_key TEXT NOT NULL,
    renewed_fingerprint TEXT NOT NULL,
    renewal_pb BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    applied_at BIGINT
);
CREATE INDEX contract_renewals_contract ON contract_renewals (pcid_key, emaid_key);
