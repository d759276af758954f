-- Application credentials and access rules, as Keystone's application_credential,
-- application_credential_role, access_rule and application_credential_access_rule
-- tables. The secret is kept only as an argon2id hash. expires_at is epoch
-- MICROseconds (Keystone's DateTimeInt), so a client's sub-second expiry is
-- returned as it was given. Access rules belong to a user and are shared by that
-- user's credentials: deleting a credential keeps its rules; a rule still linked
-- to a credential cannot be deleted.
CREATE TABLE application_credential (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    description TEXT,
    user_id TEXT NOT NULL,
    project_id TEXT,
    system TEXT,
    expires_at INTEGER,
    unrestricted INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX application_credential_project_id ON application_credential (project_id);
CREATE TABLE application_credential_role (
    application_credential_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (application_credential_id, role_id)
);
CREATE INDEX application_credential_role_role_id ON application_credential_role (role_id);
CREATE TABLE access_rule (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    service TEXT NOT NULL,
    path TEXT NOT NULL,
    method TEXT NOT NULL,
    UNIQUE (user_id, service, path, method)
);
CREATE TABLE application_credential_access_rule (
    application_credential_id TEXT NOT NULL,
    access_rule_id TEXT NOT NULL,
    PRIMARY KEY (application_credential_id, access_rule_id)
);
CREATE INDEX application_credential_access_rule_rule ON application_credential_access_rule (access_rule_id);
