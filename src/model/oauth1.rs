//! OS-OAUTH1 (Keystone's `consumer`, `request_token` and `access_token` tables): a
//! consumer (a third-party application with a key and a secret) asks for a request
//! token on a project, a user authorizes it with some of their roles there, and the
//! consumer exchanges it for an access token that gets it Keystone tokens as that user.

use serde_json::{Map, Value};

/// A consumer; `secret` is kept in the clear as Keystone keeps it (HMAC signatures
/// are verified with it), and shown only once, on create.
#[derive(Clone, PartialEq)]
pub struct Consumer {
    pub id: String,
    pub description: Option<String>,
    pub secret: String,
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("id", &self.id)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// A request token (temporary credentials), authorized once a user has given it
/// roles and a verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestToken {
    pub id: String,
    pub request_secret: String,
    pub verifier: Option<String>,
    pub authorizing_user_id: Option<String>,
    pub requested_project_id: String,
    pub role_ids: Option<Vec<String>>,
    pub consumer_id: String,
    /// Epoch microseconds; None: never expires.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestToken")
            .field("id", &self.id)
            .field("consumer_id", &self.consumer_id)
            .field("requested_project_id", &self.requested_project_id)
            .field("authorizing_user_id", &self.authorizing_user_id)
            .finish_non_exhaustive()
    }
}

/// An access token (token credentials): the authorizing user's delegation of
/// `role_ids` on `project_id` to the consumer.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub id: String,
    pub access_secret: String,
    pub authorizing_user_id: String,
    pub project_id: String,
    pub role_ids: Vec<String>,
    pub consumer_id: String,
    /// Epoch microseconds; None: never expires.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("id", &self.id)
            .field("consumer_id", &self.consumer_id)
            .field("project_id", &self.project_id)
            .field("authorizing_user_id", &self.authorizing_user_id)
            .field("role_ids", &self.role_ids)
            .finish_non_exhaustive()
    }
}

/// Keystone's `utcnow() > expires_at`.
pub fn oauth_expired(expires_at: Option<i64>, now_us: i64) -> bool {
    expires_at.is_some_and(|e| now_us > e)
}
