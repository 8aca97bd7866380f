-- Webhook subscriptions (OPCP webhooks.v1.json). The secret is the HMAC key the
-- subscriber verifies with, so it is kept as is.
CREATE TABLE webhook_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    owner_client_id TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    owner_role TEXT NOT NULL,
    -- JSON lists: the owner's scope when the endpoint was made.
    wmis TEXT NOT NULL,
    provider_ids TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled_events TEXT NOT NULL,
    api_version TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per (endpoint, event): the delivery log and the work queue. A replica claims a
-- due row by moving claimed_until into the future with a conditional UPDATE.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL,
    last_status_code BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);

-- How far the dispatcher has read the truststore's root event feed.
CREATE TABLE webhook_feed_cursor (
    feed TEXT PRIMARY KEY,
    after_sequence BIGINT NOT NULL
);
INSERT INTO webhook_feed_cursor (feed, after_sequence) VALUES ('truststore', 0);
