-- /v3/domains/{id}/config, as Keystone's `whitelisted_config` and `sensitive_config`
-- tables: one row per option, the value JSON. Sensitive options (`ldap.password`) are
-- stored apart and never returned by the API.
CREATE TABLE whitelisted_config (
    domain_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    option_name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (domain_id, group_name, option_name)
);
CREATE TABLE sensitive_config (
    domain_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    option_name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (domain_id, group_name, option_name)
);
