//! A domain's configuration (`/v3/domains/{id}/config`): option rows.

use serde_json::Value;

/// One stored option of a domain's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigOption {
    pub group: String,
    pub option: String,
    pub value: Value,
    /// Kept in `sensitive_config` and never returned (`ldap.password`).
    pub sensitive: bool,
}
