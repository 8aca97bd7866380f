-- Every certificate pnc issued, with its revocation status: the source of OCSP answers
-- and CRLs for pnc's own CAs. Keyed by (issuer SKI, serial) as cfssl keys its records;
-- the SHA-1 issuer key hash is indexed so the responder can find a record from a CertID.
CREATE TABLE issued_certificates (
    issuer_key_id BLOB NOT NULL,
    serial BLOB NOT NULL,
    issuer_key_hash_sha1 BLOB NOT NULL,
    certificate_der BLOB NOT NULL,
    profile TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT NOT NULL DEFAULT 0,
    revocation_reason BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (issuer_key_id, serial)
);
CREATE INDEX issued_certificates_by_key_hash ON issued_certificates (issuer_key_hash_sha1, serial);
CREATE INDEX issued_certificates_revoked ON issued_certificates (issuer_key_id, revoked, not_after);
