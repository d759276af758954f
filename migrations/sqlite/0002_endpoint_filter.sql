-- OS-EP-FILTER (SQLite): project <-> endpoint associations and endpoint groups.
-- Must stay column-for-column equal to migrations/postgres/0002_endpoint_filter.sql.
-- Keystone removes a project's or an endpoint's associations when either is
-- deleted (notification callbacks); here the foreign keys cascade instead, so no
-- deletion path can forget them.

CREATE TABLE project_endpoint (
    endpoint_id TEXT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    PRIMARY KEY (endpoint_id, project_id)
);
CREATE INDEX project_endpoint_project ON project_endpoint (project_id);

-- filters: a JSON object over interface, service_id, region_id.
CREATE TABLE endpoint_group (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    filters TEXT NOT NULL
);

CREATE TABLE project_endpoint_group (
    endpoint_group_id TEXT NOT NULL REFERENCES endpoint_group (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    PRIMARY KEY (endpoint_group_id, project_id)
);
CREATE INDEX project_endpoint_group_project ON project_endpoint_group (project_id);
