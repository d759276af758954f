-- [security_compliance]: user options, failed-attempt counting, inactivity, password
-- history. failed_auth_count only ever changes by one atomic UPDATE (never a
-- read-modify-write), so concurrent failures are all counted.
ALTER TABLE users ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN failed_auth_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_auth_at BIGINT;
-- Days since the epoch (Keystone keeps a date).
ALTER TABLE users ADD COLUMN last_active_at BIGINT;
-- Whether the current password was set by its owner (minimum_password_age applies).
ALTER TABLE users ADD COLUMN password_self_service INTEGER NOT NULL DEFAULT 0;
-- Earlier password hashes, oldest first, as a JSON array (unique_last_password_count).
ALTER TABLE users ADD COLUMN password_history TEXT NOT NULL DEFAULT '[]';
