-- /v3/policies, as Keystone's `policy` table: opaque policy blobs a deployment
-- stores for its services (keystone-rs never enforces them), and OS-ENDPOINT-POLICY's
-- `policy_association`: a policy tied to an endpoint, a service, or a service in a
-- region (exactly one of the three shapes; the others NULL). `id` only gives the row
-- a key, as in Keystone.
CREATE TABLE policy (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    blob TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE policy_association (
    id TEXT PRIMARY KEY NOT NULL,
    policy_id TEXT NOT NULL,
    endpoint_id TEXT,
    service_id TEXT,
    region_id TEXT
);
CREATE INDEX policy_association_policy_id ON policy_association (policy_id);
CREATE INDEX policy_association_endpoint_id ON policy_association (endpoint_id);
CREATE INDEX policy_association_service_id ON policy_association (service_id);
