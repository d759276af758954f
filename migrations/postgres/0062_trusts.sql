-- OS-TRUST, as Keystone's `trust` and `trust_role` tables. A deleted trust is removed
-- (Keystone soft-deletes it), so the duplicate-trust rule applies to live trusts only.
-- expires_at_us: microseconds since the Unix epoch (Keystone keeps subseconds).
CREATE TABLE trust (
    id TEXT PRIMARY KEY,
    trustor_user_id TEXT NOT NULL,
    trustee_user_id TEXT NOT NULL,
    project_id TEXT,
    impersonation BOOLEAN NOT NULL,
    expires_at_us BIGINT,
    remaining_uses BIGINT,
    redelegated_trust_id TEXT,
    redelegation_count BIGINT,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX trust_duplicate ON trust
    (trustor_user_id, trustee_user_id, project_id, impersonation, expires_at_us);
CREATE INDEX trust_trustee ON trust (trustee_user_id);
CREATE INDEX trust_redelegated ON trust (redelegated_trust_id);
CREATE TABLE trust_role (
    trust_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (trust_id, role_id)
);
