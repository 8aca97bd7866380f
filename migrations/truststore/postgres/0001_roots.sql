-- The root pool: trust anchors of every PKI pnc works with.
CREATE TABLE roots (
    sha256_fingerprint TEXT PRIMARY KEY,
    root_type TEXT NOT NULL,
    der BYTEA NOT NULL,
    subject TEXT NOT NULL,
    serial_hex TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    ctl_tags TEXT NOT NULL DEFAULT '[]',
    added_at BIGINT NOT NULL
);
CREATE INDEX roots_by_type ON roots (root_type);
