-- keystone-rs initial schema (SQLite). Must stay column-for-column equal to
-- migrations/postgres/0001_initial.sql; tests/schema_parity.rs checks it.
-- Booleans are INTEGER 0/1 here (SQLite has no boolean type), BOOLEAN on PostgreSQL.
-- Times are BIGINT seconds since the Unix epoch (Keystone's tokens have second precision).

CREATE TABLE domain (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE project (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL REFERENCES domain (id),
    parent_id TEXT REFERENCES project (id),
    description TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}',
    UNIQUE (domain_id, name)
);

CREATE TABLE project_tag (
    project_id TEXT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL REFERENCES domain (id),
    enabled INTEGER NOT NULL DEFAULT 1,
    default_project_id TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    password_hash TEXT,
    password_created_at BIGINT,
    password_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE user_group (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL REFERENCES domain (id),
    description TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    UNIQUE (domain_id, name)
);

CREATE TABLE group_membership (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES user_group (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX group_membership_group ON group_membership (group_id);

-- Keystone stores global roles with domain_id '<<null>>' so the unique key works.
CREATE TABLE role (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL DEFAULT '<<null>>',
    description TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    UNIQUE (name, domain_id)
);

CREATE TABLE implied_role (
    prior_role_id TEXT NOT NULL REFERENCES role (id) ON DELETE CASCADE,
    implied_role_id TEXT NOT NULL REFERENCES role (id) ON DELETE CASCADE,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

-- type: UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem
-- (target_id 'all' for the system), as in Keystone.
CREATE TABLE assignment (
    type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES role (id) ON DELETE CASCADE,
    inherited INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (type, actor_id, target_id, role_id, inherited)
);
CREATE INDEX assignment_actor ON assignment (actor_id);
CREATE INDEX assignment_target ON assignment (target_id);

CREATE TABLE region (
    id TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT REFERENCES region (id),
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE service (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE endpoint (
    id TEXT PRIMARY KEY NOT NULL,
    service_id TEXT NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    interface TEXT NOT NULL,
    url TEXT NOT NULL,
    region_id TEXT REFERENCES region (id),
    enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE revocation_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id TEXT,
    project_id TEXT,
    user_id TEXT,
    role_id TEXT,
    trust_id TEXT,
    consumer_id TEXT,
    access_token_id TEXT,
    audit_id TEXT,
    audit_chain_id TEXT,
    expires_at BIGINT,
    issued_before BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revocation_event_revoked_at ON revocation_event (revoked_at);
