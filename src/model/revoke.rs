//! Revocation events as stored.

/// One revocation event as stored; see `crate::revoke` for what the fields mean.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationEventRow {
    pub id: i64,
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub role_id: Option<String>,
    pub trust_id: Option<String>,
    pub consumer_id: Option<String>,
    pub access_token_id: Option<String>,
    pub audit_id: Option<String>,
    pub audit_chain_id: Option<String>,
    pub expires_at: Option<i64>,
    pub issued_before: i64,
    pub revoked_at: i64,
}
