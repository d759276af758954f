//! `/v3/policies` (stored policy blobs) and OS-ENDPOINT-POLICY's associations.

use serde_json::{Map, Value};

/// A stored policy: an opaque blob of some `type` (a MIME type, by convention) plus
/// free-form attributes. Keystone keeps and serves it; nobody here enforces it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPolicy {
    pub id: String,
    pub policy_type: String,
    pub blob: String,
    pub extra: Map<String, Value>,
}

/// What an OS-ENDPOINT-POLICY association ties a policy to: exactly one of these
/// shapes (Keystone's `_assert_valid_association`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyTarget {
    Endpoint(String),
    Service(String),
    ServiceInRegion {
        service_id: String,
        region_id: String,
    },
}

impl PolicyTarget {
    /// (endpoint_id, service_id, region_id), the columns of the association row.
    pub fn columns(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        match self {
            PolicyTarget::Endpoint(e) => (Some(e), None, None),
            PolicyTarget::Service(s) => (None, Some(s), None),
            PolicyTarget::ServiceInRegion {
                service_id,
                region_id,
            } => (None, Some(service_id), Some(region_id)),
        }
    }
}

/// One association row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyAssociation {
    pub policy_id: String,
    pub endpoint_id: Option<String>,
    pub service_id: Option<String>,
    pub region_id: Option<String>,
}
