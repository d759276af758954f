//! `/v3/credentials`: what the store keeps (the blob only encrypted) and the filters.

use serde_json::{Map, Value};

/// A credential row as stored: the blob is a Fernet token of the credential key
/// repository, `key_hash` the SHA-1 of the key that encrypted it.
#[derive(Clone)]
pub struct StoredCredential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub cred_type: String,
    pub encrypted_blob: String,
    pub key_hash: String,
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("type", &self.cred_type)
            .finish_non_exhaustive()
    }
}

/// The exact-match filters of `GET /v3/credentials`.
#[derive(Clone, Debug, Default)]
pub struct CredentialFilter {
    pub user_id: Option<String>,
    pub cred_type: Option<String>,
    pub project_id: Option<String>,
}
