-- One counter bumped after every write that can change a token validation's answer
-- (users, groups, projects, domains, roles, grants, catalog). Servers poll it with the
-- revocation refresh and drop their validation caches when it moves.
CREATE TABLE state_generation (
    id INTEGER PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO state_generation (id, value) VALUES (1, 0);
