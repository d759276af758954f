//! Application credentials and access rules (Keystone's `application_credential`
//! and `access_rule` tables): a secret bound to one user, one project and a subset of
//! the user's roles there, optionally restricted to a list of API calls.

/// One API call an application credential may make (`service` type, HTTP `method`,
/// `path` with keystonemiddleware's `*` and `**` wildcards). Owned by a user and
/// shared by that user's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRule {
    pub id: String,
    pub service: String,
    pub path: String,
    pub method: String,
}

/// An access rule as a create request names it: by id (an existing rule of the
/// user), or by its fields (an identical existing rule is reused, else a new one is
/// made with `id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRuleSpec {
    pub id: String,
    /// Whether the id came from the client (it must then name one of the user's rules
    /// unless the fields are given too).
    pub id_given: bool,
    pub service: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
}

/// A stored application credential. `secret_hash` is an argon2id hash, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub user_id: String,
    pub project_id: Option<String>,
    pub system: Option<String>,
    /// Epoch microseconds (Keystone keeps sub-second precision here).
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    pub secret_hash: String,
    pub created_at: i64,
    /// The roles it carries on its project, by id.
    pub role_ids: Vec<String>,
    /// None when it has no access rules (Keystone leaves the key out then).
    pub access_rules: Option<Vec<AccessRule>>,
}

impl std::fmt::Debug for ApplicationCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationCredential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("expires_at", &self.expires_at)
            .field("unrestricted", &self.unrestricted)
            .field("role_ids", &self.role_ids)
            .field("access_rules", &self.access_rules)
            .finish_non_exhaustive()
    }
}

impl ApplicationCredential {
    /// Expired at `now_us` (epoch microseconds): Keystone's `utcnow() >= expires_at`.
    pub fn expired_at(&self, now_us: i64) -> bool {
        self.expires_at.is_some_and(|e| now_us >= e)
    }
}

/// Filters of `GET /v3/users/{id}/access_rules`.
#[derive(Clone, Debug, Default)]
pub struct AccessRuleFilter {
    pub service: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
}

/// What deleting an access rule found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessRuleDeletion {
    Deleted,
    NotFound,
    InUse,
}
