-- /v3/credentials, as Keystone's `credential` table: the blob is kept only encrypted
-- with the credential key repository ([credential] key_repository); `key_hash` is the
-- SHA-1 of the primary key that encrypted it, so `credential rotate` knows which keys
-- rows still need. EC2 credentials are rows of type 'ec2' whose id is
-- sha256(access).
CREATE TABLE credential (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    project_id TEXT,
    encrypted_blob TEXT NOT NULL,
    type TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX credential_user_id ON credential (user_id);
CREATE INDEX credential_project_id ON credential (project_id);
