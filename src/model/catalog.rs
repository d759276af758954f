//! Regions, services, endpoints and endpoint groups.

type Extra = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Extra,
}

/// An OS-EP-FILTER endpoint group: `filters` selects endpoints by
/// `interface`, `service_id` and `region_id` (exact matches).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub filters: Extra,
}

/// The two OS-EP-FILTER association tables: a project linked to an endpoint, or
/// to an endpoint group. Same shape, so one set of statements serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectLink {
    Endpoint,
    EndpointGroup,
}
