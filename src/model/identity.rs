//! Users, groups and what an update does to a password.

use super::{Comparison, TextMatch};

type Extra = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub extra: Extra,
    /// PHC string (argon2id); None for users that cannot log in with a password.
    pub password_hash: Option<String>,
    pub password_expires_at: Option<i64>,
    pub created_at: i64,
    /// Keystone's user options that are set (`ignore_password_expiry`, ...), by name.
    pub options: Extra,
    /// What `[security_compliance]` keeps about logins and the current password.
    pub login: LoginState,
}

/// Per-user bookkeeping for `[security_compliance]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginState {
    pub failed_auth_count: i64,
    pub failed_auth_at: Option<i64>,
    /// Days since the epoch of the last successful authentication.
    pub last_active_at: Option<i64>,
    pub password_created_at: Option<i64>,
    /// Whether the owner set the current password (self-service change).
    pub password_self_service: bool,
}

impl User {
    /// A user option set to `true` (Keystone's `option_value is True`).
    pub fn option(&self, name: &str) -> bool {
        self.options.get(name).and_then(|v| v.as_bool()) == Some(true)
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Extra,
}

/// What an update does to the stored password.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordUpdate {
    Keep,
    /// The user can no longer log in with a password.
    Clear,
    Set(NewPassword),
}

/// A password to store: the hash and what `[security_compliance]` keeps with it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword {
    pub hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Set by its owner (POST /v3/users/{id}/password), not by an administrator.
    pub self_service: bool,
    /// Earlier hashes to keep (the one replaced first); older ones are dropped.
    pub keep_history: usize,
}

impl std::fmt::Debug for PasswordUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswordUpdate::Keep => "Keep",
            PasswordUpdate::Clear => "Clear",
            PasswordUpdate::Set(_) => "Set(..)",
        })
    }
}

/// User list filters, all answered in SQL (so pages are exact); `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// A domain-scoped caller sees its own domain only, whatever `domain_id` says.
    pub within_domain: Option<String>,
    /// `name__contains=` and friends.
    pub name_matches: Vec<TextMatch>,
    /// `password_expires_at={op}:{time}`, in microseconds; a password that never
    /// expires matches no comparison (as in Keystone's SQL).
    pub password_expires: Option<(Comparison, i64)>,
}

/// Group list filters, all answered in SQL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub within_domain: Option<String>,
    pub name_matches: Vec<TextMatch>,
}
