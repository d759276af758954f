-- Unified limits (/v3/registered_limits, /v3/limits), as Keystone's `registered_limit`
-- and `limit` tables. A registered limit is the default for a (service, region,
-- resource); a limit overrides it for one project or one domain. The unique indexes
-- make Keystone's duplicate checks hold under concurrent writers (a NULL region or
-- project counts as one value, as Keystone's checks treat it).
CREATE TABLE registered_limit (
    id TEXT PRIMARY KEY NOT NULL,
    service_id TEXT NOT NULL,
    region_id TEXT,
    resource_name TEXT NOT NULL,
    default_limit BIGINT NOT NULL,
    description TEXT
);
CREATE UNIQUE INDEX registered_limit_unique
    ON registered_limit (service_id, resource_name, COALESCE(region_id, ''));
CREATE TABLE unified_limit (
    id TEXT PRIMARY KEY NOT NULL,
    registered_limit_id TEXT NOT NULL REFERENCES registered_limit (id),
    project_id TEXT,
    domain_id TEXT,
    resource_limit BIGINT NOT NULL,
    description TEXT
);
CREATE UNIQUE INDEX unified_limit_unique
    ON unified_limit (registered_limit_id, COALESCE(project_id, ''), COALESCE(domain_id, ''));
CREATE INDEX unified_limit_project_id ON unified_limit (project_id);
CREATE INDEX unified_limit_domain_id ON unified_limit (domain_id);
