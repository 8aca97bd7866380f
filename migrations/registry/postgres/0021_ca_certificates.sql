-- Every CA certificate (and shared CPS leaf) of the stored chains, once, keyed by its
-- SHA-256 fingerprint (upper-case hex). Rows reference them by fingerprint instead of
-- repeating the same OEM/MO/CPS certificates in every vehicle, contract and signed data.
-- Content-addressed: a row never changes and is never deleted.
CREATE TABLE ca_certificates (
    fingerprint TEXT PRIMARY KEY,
    der BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- Compact rows (format = 1): the DER columns of the Sub-CAs and the root are empty and
-- the fingerprints name them in ca_certificates; what a look-up returns about the leaf
-- and the root is rendered at write time. Rows written before (format = 0) keep their
-- DER and are read as before.
ALTER TABLE provisioning_certificates ADD COLUMN format BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provisioning_certificates ADD COLUMN sub_ca2_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_certificates ADD COLUMN sub_ca1_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_certificates ADD COLUMN leaf_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_certificates ADD COLUMN root_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_certificates ADD COLUMN root_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_certificates ADD COLUMN root_key_identifier TEXT NOT NULL DEFAULT '';

-- Compact contracts (format = 1): contract_pb holds only the leaf of the chain; its
-- Sub-CAs are listed (space-separated fingerprints, nearest first) in chain_fingerprints.
ALTER TABLE contracts ADD COLUMN format BIGINT NOT NULL DEFAULT 0;
ALTER TABLE contracts ADD COLUMN chain_fingerprints TEXT NOT NULL DEFAULT '';
ALTER TABLE contracts ADD COLUMN certificate_not_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE contracts ADD COLUMN certificate_not_after BIGINT NOT NULL DEFAULT 0;

-- Compact signed data (format = 1): signed_data_pb holds no CPS chain and only the leaf
-- of the contract chain; the rest are fingerprints. v2g_root_dn is rendered at write time.
ALTER TABLE signed_contract_data ADD COLUMN format BIGINT NOT NULL DEFAULT 0;
ALTER TABLE signed_contract_data ADD COLUMN cps_chain_fingerprints TEXT NOT NULL DEFAULT '';
ALTER TABLE signed_contract_data ADD COLUMN contract_chain_fingerprints TEXT NOT NULL DEFAULT '';
ALTER TABLE signed_contract_data ADD COLUMN v2g_root_dn TEXT NOT NULL DEFAULT '';

-- Existing vehicles on PostgreSQL: move their Sub-CAs and root into ca_certificates now
-- (the root fields are still rendered from the root on read, as format 0 rows are).
INSERT INTO ca_certificates (fingerprint, der, created_at)
SELECT DISTINCT upper(encode(sha256(der), 'hex')), der, 0 FROM (
    SELECT sub_ca1_der AS der FROM provisioning_certificates
    UNION SELECT sub_ca2_der FROM provisioning_certificates WHERE length(sub_ca2_der) > 0
    UNION SELECT oem_root_der FROM provisioning_certificates
) AS chains
ON CONFLICT (fingerprint) DO NOTHING;
UPDATE provisioning_certificates SET
    sub_ca1_fingerprint = upper(encode(sha256(sub_ca1_der), 'hex')),
    sub_ca2_fingerprint = CASE WHEN length(sub_ca2_der) > 0
        THEN upper(encode(sha256(sub_ca2_der), 'hex')) ELSE '' END,
    oem_root_fingerprint = upper(encode(sha256(oem_root_der), 'hex')),
    sub_ca1_der = ''::bytea, sub_ca2_der = ''::bytea, oem_root_der = ''::bytea;
