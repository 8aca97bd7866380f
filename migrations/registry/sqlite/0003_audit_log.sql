-- The audit log: every write, hash-chained. entry_hash = SHA-256 over the previous
-- entry's hash and this entry's fields, so changing, removing or reordering a row breaks
-- the chain (`pnc audit verify`). audit_head is the lock row every write transaction
-- updates first: it serialises appends across replicas and holds the newest hash.
CREATE TABLE audit_log (
    sequence BIGINT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Hex SHA-256 of the record before and after the write; empty when absent.
    before_sha256 TEXT NOT NULL,
    after_sha256 TEXT NOT NULL,
    previous_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    sequence BIGINT NOT NULL,
    entry_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, sequence, entry_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
