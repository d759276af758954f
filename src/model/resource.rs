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

/// Project list filters, all answered in SQL (so pages are exact).
#[derive(Clone, Debug, Default)]
pub struct ProjectFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub enabled: Option<bool>,
    pub parent_id: Option<String>,
    pub tags: TagFilters,
    /// A domain-scoped caller sees its own domain only.
    pub within_domain: Option<String>,
}

/// Keystone's tag filters on `GET /v3/projects`, each a comma-separated list.
#[derive(Clone, Debug, Default)]
pub struct TagFilters {
    /// `tags`: projects holding all of them.
    pub all: Option<Vec<String>>,
    /// `tags-any`: projects holding at least one.
    pub any: Option<Vec<String>>,
    /// `not-tags`: projects not holding all of them.
    pub not_all: Option<Vec<String>>,
    /// `not-tags-any`: projects holding none of them.
    pub not_any: Option<Vec<String>>,
}

impl TagFilters {
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.any.is_none() && self.not_all.is_none() && self.not_any.is_none()
    }

    pub fn matches(&self, tags: &[String]) -> bool {
        let has = |t: &String| tags.contains(t);
        self.all.as_ref().is_none_or(|w| w.iter().all(has))
            && self.any.as_ref().is_none_or(|w| w.iter().any(has))
            && self.not_all.as_ref().is_none_or(|w| !w.iter().all(has))
            && self.not_any.as_ref().is_none_or(|w| !w.iter().any(has))
    }
}
