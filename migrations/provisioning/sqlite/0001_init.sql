-- The provisioning service's schema starts here; later migrations add its tables.
CREATE TABLE provisioning_schema_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
