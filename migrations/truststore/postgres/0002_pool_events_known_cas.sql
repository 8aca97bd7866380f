-- The root pool grows an identity (OPCP rootCertificateId), several roles per root (OPNC
-- rootTypeList), lifecycle flags, an outbox of pool events, and the index of every CA pnc
-- knows for OCSP CertID and chain-building lookups.

ALTER TABLE roots ADD COLUMN id TEXT NOT NULL DEFAULT '';
-- 0/1: retired by an admin (root.cert.revoked).
ALTER TABLE roots ADD COLUMN revoked BIGINT NOT NULL DEFAULT 0;
-- 0/1: past notAfter, marked once by the expiry watch (root.cert.expired).
ALTER TABLE roots ADD COLUMN expired BIGINT NOT NULL DEFAULT 0;
ALTER TABLE roots ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
-- Rows from before this migration get a stable UUID-shaped ID derived from their fingerprint.
UPDATE roots SET id = lower(substr(sha256_fingerprint, 1, 8) || '-' || substr(sha256_fingerprint, 9, 4)
    || '-' || substr(sha256_fingerprint, 13, 4) || '-' || substr(sha256_fingerprint, 17, 4)
    || '-' || substr(sha256_fingerprint, 21, 12)), changed_at = added_at WHERE id = '';
CREATE UNIQUE INDEX roots_by_id ON roots (id);
CREATE INDEX roots_by_expiry ON roots (expired, not_after);

-- Every role a root serves; roots.root_type stays the first one.
CREATE TABLE root_roles (
    sha256_fingerprint TEXT NOT NULL REFERENCES roots (sha256_fingerprint),
    root_type TEXT NOT NULL,
    PRIMARY KEY (sha256_fingerprint, root_type)
);
CREATE INDEX root_roles_by_type ON root_roles (root_type);
INSERT INTO root_roles (sha256_fingerprint, root_type) SELECT sha256_fingerprint, root_type FROM roots;

-- The outbox of pool changes (root.cert.added/expired/revoked), written in the transaction
-- that makes the change and read by the registry's webhook dispatcher in sequence order.
CREATE TABLE root_events (
    sequence BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type TEXT NOT NULL,
    sha256_fingerprint TEXT NOT NULL REFERENCES roots (sha256_fingerprint),
    occurred_at BIGINT NOT NULL
);

-- Every CA pnc knows: pool roots, registered or seen intermediates, pnc's own CAs. Hashes
-- are upper-case hex, precomputed for RFC 6960 §4.1.1 CertID lookups: the issuer name hash
-- over the DER of the subject Name, the key hash over the subjectPublicKey BIT STRING value.
CREATE TABLE known_cas (
    sha256_fingerprint TEXT PRIMARY KEY,
    der BYTEA NOT NULL,
    source TEXT NOT NULL,
    name_sha1 TEXT NOT NULL,
    name_sha256 TEXT NOT NULL,
    key_sha1 TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    -- Empty when the certificate has no subjectKeyIdentifier.
    subject_key_identifier TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    added_at BIGINT NOT NULL
);
CREATE INDEX known_cas_by_sha1_hashes ON known_cas (key_sha1, name_sha1);
CREATE INDEX known_cas_by_sha256_hashes ON known_cas (key_sha256, name_sha256);
CREATE INDEX known_cas_by_name_sha256 ON known_cas (name_sha256);
CREATE INDEX known_cas_by_ski ON known_cas (subject_key_identifier);
