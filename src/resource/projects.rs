//! Projects with Keystone's hierarchy rules (`keystone/resource/core.py`).
//!
//! Keystone stores a domain as a project acting as a domain (`is_domain`), and a
//! top-level project's `parent_id` is its domain. We keep domains in their own
//! table and a NULL `parent_id` for top-level projects, and show both through the
//! projects API the way Keystone does: [`ProjectView`] is that view.

use std::collections::HashSet;

use super::ResourceService;
use crate::error::{Error, Result};
use crate::model::{
    Domain, Page, PageRequest, Project, ProjectDeletion, ProjectFilter, TagAddition,
};
use crate::store::StoreError;

type Extra = serde_json::Map<String, serde_json::Value>;

/// Keystone's `maxItems` for a project's tags.
pub const MAX_PROJECT_TAGS: usize = 80;
/// Keystone's `maxLength` for one tag.
const MAX_TAG_LENGTH: usize = 255;
/// Guards the parent walk against a corrupt (cyclic) hierarchy.
const MAX_WALK: usize = 1000;

/// One entry of the projects API: a project, or a domain seen as a project acting
/// as a domain.
#[derive(Clone, Debug, PartialEq)]
pub enum ProjectView {
    Project { project: Project, tags: Vec<String> },
    Domain(Domain),
}

impl ProjectView {
    pub fn id(&self) -> &str {
        match self {
            ProjectView::Project { project, .. } => &project.id,
            ProjectView::Domain(d) => &d.id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ProjectView::Project { project, .. } => &project.name,
            ProjectView::Domain(d) => &d.name,
        }
    }

    /// None for a domain (Keystone stores no domain for a project acting as one).
    pub fn domain_id(&self) -> Option<&str> {
        match self {
            ProjectView::Project { project, .. } => Some(&project.domain_id),
            ProjectView::Domain(_) => None,
        }
    }

    /// Keystone's parent: the domain for a top-level project, None for a domain.
    pub fn parent_id(&self) -> Option<&str> {
        match self {
            ProjectView::Project { project, .. } => {
                Some(project.parent_id.as_deref().unwrap_or(&project.domain_id))
            }
            ProjectView::Domain(_) => None,
        }
    }

    pub fn is_domain(&self) -> bool {
        matches!(self, ProjectView::Domain(_))
    }

    pub fn enabled(&self) -> bool {
        match self {
            ProjectView::Project { project, .. } => project.enabled,
            ProjectView::Domain(d) => d.enabled,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            ProjectView::Project { project, .. } => &project.description,
            ProjectView::Domain(d) => &d.description,
        }
    }

    pub fn tags(&self) -> &[String] {
        match self {
            ProjectView::Project { tags, .. } => tags,
            ProjectView::Domain(_) => &[],
        }
    }

    pub fn extra(&self) -> &Extra {
        match self {
            ProjectView::Project { project, .. } => &project.extra,
            ProjectView::Domain(d) => &d.extra,
        }
    }
}

/// A project to create. `parent_id` is as requested: None or the domain's id
/// makes a top-level project.
#[derive(Clone, Debug)]
pub struct NewProject {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
    pub tags: Vec<String>,
}

/// A PATCH: only the attributes present in the request.
#[derive(Clone, Debug, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub extra: Extra,
    /// Immutable in Keystone: a value different from the current one is refused.
    pub domain_id: Option<Option<String>>,
    pub parent_id: Option<Option<String>>,
    pub is_domain: Option<bool>,
}

/// `GET /v3/projects` filters. `is_domain` switches to domains shown as projects.
#[derive(Clone, Debug, Default)]
pub struct ProjectQuery {
    pub filter: ProjectFilter,
    pub is_domain: bool,
}

/// Keystone's `_project_tag_name_properties`: 1..255 characters, no '/' or ','.
/// Returns the problem in jsonschema's words.
pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let len = tag.chars().count();
    if len == 0 {
        Err(format!("'{tag}' is too short"))
    } else if len > MAX_TAG_LENGTH {
        Err(format!("'{tag}' is too long"))
    } else if tag.contains(['/', ',']) {
        Err(format!("'{tag}' does not match '^[^,/]*$'"))
    } else {
        Ok(())
    }
}

/// Keystone strips each tag before storing it; stripping may create duplicates,
/// which the primary key would refuse, so they collapse here.
fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    tags.iter()
        .map(|t| t.trim().to_string())
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

fn project_conflict(name: &str, id: &str) -> Error {
    Error::Conflict {
        what: format!(
            "project - it is not permitted to have two projects with either the same name or same id in the same domain: name is {name}, project id {id}."
        ),
    }
}

fn domain_project_conflict(name: &str) -> Error {
    Error::Conflict {
        what: format!(
            "project - it is not permitted to have two projects acting as domains with the same name: {name}."
        ),
    }
}

/// Keystone's MarkerNotFound.
pub fn marker_not_found(marker: &str) -> Error {
    Error::not_found(format!("Marker {marker} could not be found."))
}

fn project_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find project: {id}."))
}

impl ResourceService {
    /// A project with its tags, or a domain acting as a project; None if neither exists.
    pub async fn find_project_view(&self, id: &str) -> Result<Option<ProjectView>> {
        if let Some(view) = self.find_project_with_tags(id).await? {
            return Ok(Some(view));
        }
        Ok(self.store.get_domain(id).await?.map(ProjectView::Domain))
    }

    /// A real project (not a domain) with its tags.
    pub async fn find_project_with_tags(&self, id: &str) -> Result<Option<ProjectView>> {
        match self.store.get_project(id).await? {
            Some(project) => {
                let tags = self.store.list_project_tags(id).await?;
                Ok(Some(ProjectView::Project { project, tags }))
            }
            None => Ok(None),
        }
    }

    /// The parents of a project, nearest first, up to (not including) its domain.
    pub async fn project_parents(&self, project: &Project) -> Result<Vec<Project>> {
        let mut out: Vec<Project> = Vec::new();
        let mut next = project.parent_id.clone();
        while let Some(id) = next {
            if out.len() >= MAX_WALK || out.iter().any(|p| p.id == id) || id == project.id {
                return Err(Error::internal(anyhow::anyhow!(
                    "circular reference in the project hierarchy at {id}"
                )));
            }
            let Some(parent) = self.store.get_project(&id).await? else {
                break;
            };
            next = parent.parent_id.clone();
            out.push(parent);
        }
        Ok(out)
    }

    /// Every project below `id`, breadth first.
    pub async fn project_subtree(&self, id: &str) -> Result<Vec<Project>> {
        let mut out: Vec<Project> = Vec::new();
        let mut seen: HashSet<String> = HashSet::from([id.to_string()]);
        let mut frontier = vec![id.to_string()];
        while let Some(parent) = frontier.pop() {
            for child in self.store.list_child_projects(&parent).await? {
                if !seen.insert(child.id.clone()) {
                    return Err(Error::internal(anyhow::anyhow!(
                        "circular reference in the project hierarchy at {}",
                        child.id
                    )));
                }
                frontier.push(child.id.clone());
                out.push(child);
            }
        }
        Ok(out)
    }

    /// `GET /v3/projects`: one page in id order, every filter applied in SQL first.
    /// An unknown marker (project or domain) is Keystone's 404.
    pub async fn list_project_views(
        &self,
        q: &ProjectQuery,
        page: &PageRequest,
    ) -> Result<Page<ProjectView>> {
        if let Some(marker) = &page.marker {
            if self.store.get_project(marker).await?.is_none()
                && self.store.get_domain(marker).await?.is_none()
            {
                return Err(marker_not_found(marker));
            }
        }
        let f = &q.filter;
        if q.is_domain {
            // Domains have no domain, no parent and no tags.
            if f.domain_id.is_some()
                || f.parent_id.is_some()
                || f.within_domain.is_some()
                || !f.tags.matches(&[])
            {
                return Ok(Page {
                    items: Vec::new(),
                    more: false,
                });
            }
            let domains = self
                .store
                .list_domains_page(f.name.as_deref(), f.enabled, page)
                .await?;
            let page = Page::from_overfetch(domains, page.limit);
            return Ok(Page {
                items: page.items.into_iter().map(ProjectView::Domain).collect(),
                more: page.more,
            });
        }
        let projects = self.store.list_projects_filtered(f, page).await?;
        let page = Page::from_overfetch(projects, page.limit);
        Ok(Page {
            items: self.project_views(page.items).await?,
            more: page.more,
        })
    }

    /// Keystone's `create_project` for a regular project: the domain and parent
    /// must exist and agree, the whole branch must be enabled, and the new project
    /// must not be deeper than `[DEFAULT] max_project_tree_depth`.
    pub async fn create_project(&self, new: NewProject) -> Result<ProjectView> {
        let name = new.name.trim().to_string();
        let domain = self
            .store
            .get_domain(&new.domain_id)
            .await?
            .ok_or_else(|| {
                Error::validation(format!("Could not find domain: {}.", new.domain_id))
            })?;
        let parent_id = new.parent_id.filter(|p| *p != domain.id);
        // Checked in Keystone's order: the parent's ancestors nearest first, the
        // domain, then the parent itself.
        let mut branch: Vec<(String, bool)> = Vec::new();
        let mut depth = 1;
        if let Some(pid) = &parent_id {
            let parent = match self.store.get_project(pid).await? {
                Some(p) => p,
                None if self.store.get_domain(pid).await?.is_some() => {
                    return Err(Error::validation(format!(
                        "Cannot create project, the parent ({pid}) is acting as a domain, but this project's domain id ({}) does not match the parent's id.",
                        domain.id
                    )))
                }
                None => return Err(Error::validation(format!("Could not find project: {pid}."))),
            };
            if parent.domain_id != domain.id {
                return Err(Error::validation(format!(
                    "Cannot create project, since it specifies its domain_id {}, but specifies a parent in a different domain ({}).",
                    domain.id, parent.domain_id
                )));
            }
            let ancestors = self.project_parents(&parent).await?;
            depth += 1 + ancestors.len();
            branch.extend(ancestors.into_iter().map(|p| (p.id, p.enabled)));
            branch.push((domain.id.clone(), domain.enabled));
            branch.push((parent.id, parent.enabled));
        } else {
            branch.push((domain.id.clone(), domain.enabled));
        }
        if let Some((id, _)) = branch.iter().find(|(_, enabled)| !enabled) {
            return Err(Error::validation(format!(
                "cannot create a project in a branch containing a disabled project: {id}"
            )));
        }
        if depth > self.max_project_tree_depth {
            return Err(Error::validation_forbidden(format!(
                "Max hierarchy depth reached for {} branch.",
                parent_id.as_deref().unwrap_or(&domain.id)
            )));
        }
        let project = Project {
            id: new.id,
            name,
            domain_id: domain.id,
            parent_id,
            description: new.description,
            enabled: new.enabled,
            extra: new.extra,
        };
        let tags = normalize_tags(&new.tags);
        self.store
            .create_project_with_tags(&project, &tags)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => project_conflict(&project.name, &project.id),
                other => other.into(),
            })?;
        Ok(ProjectView::Project { project, tags })
    }

    /// `POST /v3/projects` with `is_domain: true`: Keystone creates a domain.
    pub async fn create_domain_as_project(&self, mut domain: Domain) -> Result<ProjectView> {
        domain.name = domain.name.trim().to_string();
        self.store
            .create_domain(&domain)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => domain_project_conflict(&domain.name),
                other => other.into(),
            })?;
        Ok(ProjectView::Domain(domain))
    }

    /// Keystone's `_update_project`: domain, parent and `is_domain` are immutable;
    /// a project is enabled only under enabled parents and disabled only above a
    /// disabled subtree. Disabling records no revocation event: token validation
    /// re-reads `enabled`.
    pub async fn update_project(&self, id: &str, patch: ProjectPatch) -> Result<ProjectView> {
        let mut project = self
            .store
            .get_project(id)
            .await?
            .ok_or_else(|| project_not_found(id))?;
        if let Some(domain_id) = &patch.domain_id {
            if domain_id.as_deref() != Some(project.domain_id.as_str()) {
                return Err(Error::validation("Cannot change Domain ID"));
            }
        }
        if let Some(parent_id) = &patch.parent_id {
            let current = project.parent_id.as_deref().unwrap_or(&project.domain_id);
            if parent_id.as_deref() != Some(current) {
                return Err(Error::validation_forbidden(
                    "Update of `parent_id` is not allowed.",
                ));
            }
        }
        if patch.is_domain == Some(true) {
            return Err(Error::validation("Update of `is_domain` is not allowed."));
        }
        let enabling = patch.enabled == Some(true) && !project.enabled;
        let disabling = patch.enabled == Some(false) && project.enabled;
        if enabling {
            let domain = self.get_domain(&project.domain_id).await?;
            let parents = self.project_parents(&project).await?;
            if !domain.enabled || parents.iter().any(|p| !p.enabled) {
                return Err(Error::validation_forbidden(format!(
                    "Cannot enable project {id} since it has disabled parents"
                )));
            }
        }
        if disabling && self.project_subtree(id).await?.iter().any(|p| p.enabled) {
            return Err(Error::validation_forbidden(format!(
                "Cannot disable project {id} since its subtree contains enabled projects."
            )));
        }
        if let Some(name) = patch.name {
            project.name = name.trim().to_string();
        }
        if let Some(description) = patch.description {
            project.description = description;
        }
        if let Some(enabled) = patch.enabled {
            project.enabled = enabled;
        }
        project.extra.extend(patch.extra);
        let tags = patch.tags.as_deref().map(normalize_tags);
        let updated = self
            .store
            .update_project_with_tags(&project, tags.as_deref())
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => project_conflict(&project.name, &project.id),
                other => other.into(),
            })?;
        if !updated {
            return Err(project_not_found(id));
        }
        let tags = self.store.list_project_tags(id).await?;
        Ok(ProjectView::Project { project, tags })
    }

    /// `PATCH /v3/projects/{domain_id}`: Keystone updates the domain.
    pub async fn update_domain_as_project(
        &self,
        id: &str,
        patch: ProjectPatch,
    ) -> Result<ProjectView> {
        let mut domain = self.get_domain(id).await?;
        if matches!(&patch.domain_id, Some(Some(_))) {
            return Err(Error::validation("Cannot change Domain ID"));
        }
        if matches!(&patch.parent_id, Some(Some(_))) {
            return Err(Error::validation_forbidden(
                "Update of `parent_id` is not allowed.",
            ));
        }
        if patch.is_domain == Some(false) {
            return Err(Error::validation("Update of `is_domain` is not allowed."));
        }
        if patch.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::validation(
                "keystone-rs does not store tags on projects acting as domains.",
            ));
        }
        if let Some(name) = patch.name {
            domain.name = name.trim().to_string();
        }
        if let Some(description) = patch.description {
            domain.description = description;
        }
        if let Some(enabled) = patch.enabled {
            domain.enabled = enabled;
        }
        domain.extra.extend(patch.extra);
        let name = domain.name.clone();
        let updated = self
            .store
            .update_domain(&domain)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => domain_project_conflict(&name),
                other => other.into(),
            })?;
        if !updated {
            return Err(Error::not_found(format!("Could not find domain: {id}.")));
        }
        Ok(ProjectView::Domain(domain))
    }

    /// Deletes a leaf project with its assignments and tags, then revokes every
    /// token scoped to it (Keystone's `Audit.deleted('project')` callback).
    pub async fn delete_project(&self, id: &str) -> Result<()> {
        match self.store.delete_project(id).await? {
            ProjectDeletion::Deleted => self.revoke.revoke_project(id).await,
            ProjectDeletion::NotFound => Err(project_not_found(id)),
            ProjectDeletion::HasChildren => Err(Error::validation_forbidden(format!(
                "Cannot delete the project {id} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree."
            ))),
        }
    }

    /// Replaces every tag (`PUT /v3/projects/{id}/tags`); returns the stored list.
    pub async fn replace_project_tags(&self, id: &str, tags: &[String]) -> Result<Vec<String>> {
        let tags = normalize_tags(tags);
        if !self.store.set_project_tags(id, &tags).await? {
            return Err(project_not_found(id));
        }
        Ok(tags)
    }

    /// `PUT /v3/projects/{id}/tags/{tag}`. Keystone validates the resulting list,
    /// so a tag already present, or an 81st tag, is a 400.
    pub async fn add_project_tag(&self, id: &str, tag: &str) -> Result<()> {
        if self.store.get_project(id).await?.is_none() {
            return Err(project_not_found(id));
        }
        let tags = self.store.list_project_tags(id).await?;
        let listing = || {
            let mut all = tags.clone();
            all.push(tag.to_string());
            serde_json::to_string(&all).unwrap_or_default()
        };
        match self
            .store
            .add_project_tag(id, tag.trim(), MAX_PROJECT_TAGS)
            .await?
        {
            TagAddition::Added => Ok(()),
            TagAddition::AlreadyPresent => Err(Error::validation(format!(
                "Invalid input for field 'tags': {} has non-unique elements",
                listing()
            ))),
            TagAddition::Full => Err(Error::validation(format!(
                "Invalid input for field 'tags': {} is too long",
                listing()
            ))),
        }
    }

    /// `DELETE /v3/projects/{id}/tags/{tag}`.
    pub async fn remove_project_tag(&self, id: &str, tag: &str) -> Result<()> {
        if self.store.get_project(id).await?.is_none() {
            return Err(project_not_found(id));
        }
        if !self.store.remove_project_tag(id, tag).await? {
            return Err(Error::not_found(format!(
                "Could not find project tag: {tag}."
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TagFilters;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_filters_follow_the_api_reference() {
        let tags = v(&["a", "b"]);
        let f = |all: Option<&[&str]>,
                 any: Option<&[&str]>,
                 not_all: Option<&[&str]>,
                 not_any: Option<&[&str]>| TagFilters {
            all: all.map(v),
            any: any.map(v),
            not_all: not_all.map(v),
            not_any: not_any.map(v),
        };
        assert!(f(Some(&["a", "b"]), None, None, None).matches(&tags));
        assert!(!f(Some(&["a", "c"]), None, None, None).matches(&tags));
        assert!(f(None, Some(&["c", "b"]), None, None).matches(&tags));
        assert!(!f(None, Some(&["c"]), None, None).matches(&tags));
        assert!(f(None, None, Some(&["a", "c"]), None).matches(&tags));
        assert!(!f(None, None, Some(&["a", "b"]), None).matches(&tags));
        assert!(f(None, None, None, Some(&["c"])).matches(&tags));
        assert!(!f(None, None, None, Some(&["c", "a"])).matches(&tags));
    }

    #[test]
    fn tags_are_validated_like_keystone_schema() {
        assert!(validate_tag("ok tag").is_ok());
        assert!(validate_tag("").is_err());
        assert!(validate_tag("a/b").is_err());
        assert!(validate_tag("a,b").is_err());
        assert!(validate_tag(&"x".repeat(255)).is_ok());
        assert!(validate_tag(&"x".repeat(256)).is_err());
    }

    #[test]
    fn stripping_collapses_duplicates() {
        assert_eq!(normalize_tags(&v(&[" a", "a ", "b"])), v(&["a", "b"]));
    }
}
