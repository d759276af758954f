//! OS-TRUST: a trustor's delegation of roles on a project to a trustee.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A trust, as Keystone's `trust` and `trust_role` tables hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct Trust {
    /// 32 hex digits (the Fernet payload carries it as UUID bytes).
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    pub impersonation: bool,
    /// Microsecond precision, as Keystone keeps it.
    pub expires_at: Option<DateTime<Utc>>,
    /// None: unlimited.
    pub remaining_uses: Option<i64>,
    /// The trust this one was redelegated from.
    pub redelegated_trust_id: Option<String>,
    pub redelegation_count: Option<i64>,
    /// The delegated role ids (not their implied roles).
    pub role_ids: Vec<String>,
    /// Attributes Keystone keeps in `extra` (unknown request attributes).
    pub extra: Map<String, Value>,
}

impl Trust {
    /// Past its expiry (Keystone: `now > expires_at`).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| now > e)
    }

    /// No use left (a limited trust at 0).
    pub fn is_exhausted(&self) -> bool {
        self.remaining_uses.is_some_and(|n| n <= 0)
    }
}

/// Which trusts to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustFilter {
    All,
    Trustor(String),
    Trustee(String),
}

/// What taking one use of a trust found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustUse {
    /// An unlimited trust: nothing to take.
    Unlimited,
    /// One use taken.
    Taken,
    /// A limited trust with no use left.
    Exhausted,
    /// No such trust (deleted meanwhile).
    Missing,
}
