-- OS-OAUTH1, as Keystone's `consumer`, `request_token` and `access_token` tables.
-- Keystone keeps the consumer secret and the token secrets in the clear (its HMAC-SHA1
-- verification needs them), and so does keystone-rs: they are never returned after
-- create (consumer) or the token response.
-- expires_at_us: microseconds since the Unix epoch (Keystone keeps an ISO 8601 string
-- with subseconds); NULL: never expires ([oauth1] *_token_duration = 0).
-- role_ids: a JSON array of role ids, as Keystone's.
CREATE TABLE consumer (
    id TEXT PRIMARY KEY,
    description TEXT,
    secret TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE request_token (
    id TEXT PRIMARY KEY,
    request_secret TEXT NOT NULL,
    verifier TEXT,
    authorizing_user_id TEXT,
    requested_project_id TEXT NOT NULL,
    role_ids TEXT,
    consumer_id TEXT NOT NULL,
    expires_at_us BIGINT
);
CREATE INDEX request_token_consumer ON request_token (consumer_id);
CREATE TABLE access_token (
    id TEXT PRIMARY KEY,
    access_secret TEXT NOT NULL,
    authorizing_user_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    role_ids TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    expires_at_us BIGINT
);
CREATE INDEX access_token_user ON access_token (authorizing_user_id);
CREATE INDEX access_token_consumer ON access_token (consumer_id);
