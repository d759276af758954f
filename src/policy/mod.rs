//! Role-based access control: Keystone's default policy and oslo.policy's
//! rule language.
//!
//! Keystone asks oslo.policy "may these credentials perform this action on
//! this target?" before every protected API call. This module answers the
//! same question with the same data: [`defaults::DEFAULT_RULES`] is
//! Keystone's in-code policy, an operator's `policy.yaml` / `policy.json`
//! overrides individual rules, and [`Enforcer::enforce`] applies a rule plus
//! its `scope_types`, as oslo.policy 6 does (scope is always enforced).
//!
//! Rules are parsed and linked once, at load; enforcing walks the parsed
//! tree and does not allocate unless it has to build the 403 error.
//! See `docs/policy.md` for the operator-facing description.

pub mod defaults;
mod docs;
mod enforcer;
mod eval;
mod parser;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub use defaults::{DefaultRule, DEFAULT_RULES};
pub use docs::defaults_markdown_table;
pub use enforcer::{Enforcer, RuleView};

/// The scope of the token a request was made with, as oslo.policy derives
/// it for `scope_types` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeType {
    System,
    Domain,
    Project,
}

impl ScopeType {
    /// The name oslo.policy and Keystone use (`system`, `domain`, `project`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Domain => "domain",
            Self::Project => "project",
        }
    }
}

impl fmt::Display for ScopeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking: the caller's token, reduced to what policy can look at
/// (oslo.context's `to_policy_values()` plus Keystone's rendered token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: Option<String>,
    pub user_domain_id: Option<String>,
    /// Set for project-scoped tokens.
    pub project_id: Option<String>,
    pub project_domain_id: Option<String>,
    /// Set for domain-scoped tokens.
    pub domain_id: Option<String>,
    /// `Some("all")` for system-scoped tokens.
    pub system_scope: Option<String>,
    /// Effective role names on the token's scope, implied roles included
    /// (admin implies manager, member, reader).
    pub roles: Vec<String>,
    /// True only for the deprecated `[DEFAULT] admin_token` shared secret;
    /// like Keystone, [`Enforcer::enforce`] then skips RBAC altogether.
    pub is_admin: bool,
}

impl Credentials {
    /// The token's scope, derived as oslo.policy does: system if
    /// `system_scope` is set, else domain if `domain_id` is set, else
    /// project. An unscoped token therefore counts as project-scoped.
    pub fn scope_type(&self) -> ScopeType {
        if is_set(&self.system_scope) {
            ScopeType::System
        } else if is_set(&self.domain_id) {
            ScopeType::Domain
        } else {
            ScopeType::Project
        }
    }
}

/// oslo.policy tests these attributes for truthiness: `""` is unset.
fn is_set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// Errors from loading a policy or enforcing it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The caller may not perform `action`. The message is Keystone's
    /// `ForbiddenAction` text, which clients and tests match on.
    #[error("You are not authorized to perform the requested action: {action}.")]
    Forbidden { action: String },
    /// The policy file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The policy file is not a YAML/JSON mapping of rule names to rules.
    #[error("{origin}: {message}")]
    Format { origin: String, message: String },
    /// A rule's check string does not parse.
    #[error("{origin}: rule {rule:?}: {message}")]
    Parse {
        origin: String,
        rule: String,
        message: String,
    },
}
