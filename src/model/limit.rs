//! Unified limits: a registered limit is a service's default for one resource (in one
//! region or all); a limit overrides it for one project or one domain.

/// A row of `/v3/registered_limits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredLimit {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub default_limit: i64,
    pub description: Option<String>,
}

/// A row of `/v3/limits`, with the service, region and resource of its registered
/// limit (Keystone stores only the reference and joins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub id: String,
    pub registered_limit_id: String,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub resource_limit: i64,
    pub description: Option<String>,
}

/// Exact-match filters of the two lists. `region_id: Some(None)` selects rows without
/// a region (what Keystone's duplicate checks look up).
#[derive(Clone, Debug, Default)]
pub struct LimitFilter {
    pub service_id: Option<String>,
    pub region_id: Option<Option<String>>,
    pub resource_name: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
}

/// The changes of `PATCH /v3/registered_limits/{id}`: `Some(None)` clears.
#[derive(Clone, Debug, Default)]
pub struct RegisteredLimitPatch {
    pub service_id: Option<String>,
    pub region_id: Option<Option<String>>,
    pub resource_name: Option<String>,
    pub default_limit: Option<i64>,
    pub description: Option<Option<String>>,
}
