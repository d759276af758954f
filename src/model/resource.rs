//! Domains and projects.

type Extra = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

/// What `delete_project` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectDeletion {
    Deleted,
    NotFound,
    /// Keystone deletes leaves only (the API has no cascade).
    HasChildren,
}

/// What `add_project_tag` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagAddition {
    Added,
    AlreadyPresent,
    /// The project already holds the maximum number of tags.
    Full,
}

/// The project list filters answered in SQL; the rest are applied by the service.
#[derive(Clone, Debug, Default)]
pub struct ProjectFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub enabled: Option<bool>,
}
