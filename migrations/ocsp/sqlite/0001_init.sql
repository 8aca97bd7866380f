-- The ocsp service's schema starts here; later migrations add its tables.
CREATE TABLE ocsp_schema_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
