-- The provisioning certificate pool: one chain per PCID. pcid_key is the upper-case PCID
-- (PCIDs compare case-insensitively); pcid keeps the spelling the OEM sent.
CREATE TABLE provisioning_certificates (
    pcid_key TEXT PRIMARY KEY,
    pcid TEXT NOT NULL,
    wmi TEXT NOT NULL,
    leaf_der BLOB NOT NULL,
    -- Sub-CA 2 (empty when the chain has only Sub-CA 1) and Sub-CA 1.
    sub_ca2_der BLOB NOT NULL,
    sub_ca1_der BLOB NOT NULL,
    oem_root_fingerprint TEXT NOT NULL,
    oem_root_der BLOB NOT NULL,
    xsd_msg_def_namespace TEXT NOT NULL,
    -- JSON list of strings.
    v2g_root_akis TEXT NOT NULL,
    previous_pcid TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every OEM Sub-CA of every registered chain, kept after the chain is deleted: an EV's
-- provisioning certificate is validated through them even when its PCID is unknown.
CREATE TABLE oem_sub_cas (
    fingerprint TEXT PRIMARY KEY,
    subject_key_id BLOB NOT NULL,
    subject_name_der BLOB NOT NULL,
    der BLOB NOT NULL,
    wmi TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX oem_sub_cas_by_ski ON oem_sub_cas (subject_key_id);
CREATE INDEX oem_sub_cas_by_subject ON oem_sub_cas (subject_name_der);

-- Contracts by (PCID, eMAID). emaid_key is the eMAID without check digit (its first 14
-- characters) so every equivalent spelling finds it; emaid keeps the registered form.
-- contract_pb is the pnc.registry.v1.Contract message without signed data.
CREATE TABLE contracts (
    pcid_key TEXT NOT NULL,
    emaid_key TEXT NOT NULL,
    pcid TEXT NOT NULL,
    emaid TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    is_default BIGINT NOT NULL,
    cancelled BIGINT NOT NULL,
    contract_pb BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (pcid_key, emaid_key)
);
CREATE INDEX contracts_by_emaid ON contracts (emaid_key);

-- Pre-signed contract data per (PCID, eMAID, V2G root): a pnc.registry.v1.SignedContractData.
CREATE TABLE signed_contract_data (
    pcid_key TEXT NOT NULL,
    emaid_key TEXT NOT NULL,
    v2g_root_fingerprint TEXT NOT NULL,
    signed_data_pb BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (pcid_key, emaid_key, v2g_root_fingerprint)
);
