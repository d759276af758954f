-- Fernet keys kept in the database ([fernet_tokens] key_store = database), so every
-- replica reads one key set. `material` is the key encrypted with the key-encryption
-- key each node reads from [fernet_tokens] key_encryption_key_file: a dump of the
-- database alone cannot forge a token. `idx` is Keystone's file name (0 staged,
-- the highest the primary).
CREATE TABLE fernet_key (
    idx BIGINT PRIMARY KEY NOT NULL,
    material TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When it stopped being the primary (0: it is the staged key or the primary).
    -- A key is purged only once no token it encrypted can still be accepted:
    -- retired_at + expiration + allow_expired_window.
    retired_at BIGINT NOT NULL
);
-- The key set's version: bumped by every change (setup, rotation, import), so a
-- replica reloads only when it moved; `rotated_at` is when the primary last changed,
-- `rotated_by` which replica (or command) changed it.
CREATE TABLE fernet_key_state (
    id INTEGER PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    rotated_at BIGINT NOT NULL,
    rotated_by TEXT NOT NULL
);
INSERT INTO fernet_key_state (id, version, rotated_at, rotated_by) VALUES (1, 0, 0, '');
-- What each running replica has loaded, written every refresh: a staged key becomes
-- primary only once every live replica has it.
CREATE TABLE fernet_replica (
    id TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    loaded_version BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    -- 1 while it holds the rotation lock (auto_rotate).
    is_leader BIGINT NOT NULL
);
