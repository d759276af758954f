//! Domains and projects: lookups by id or name with Keystone's error messages,
//! and the writes with Keystone's rules (a domain must be disabled before deletion).

mod projects;

pub use projects::{
    marker_not_found, validate_tag, NewProject, ProjectPatch, ProjectQuery, ProjectView,
    MAX_PROJECT_TAGS,
};

use crate::cache::{read_through, GenerationCache};
use crate::error::{Error, Result};
use crate::model::{Domain, Page, PageRequest, Project};
use crate::revoke::RevokeService;
use crate::store::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct ResourceService {
    store: Store,
    default_domain_id: String,
    /// Deleting a project records a revocation event for its tokens.
    revoke: RevokeService,
    /// `[DEFAULT] max_project_tree_depth`.
    max_project_tree_depth: usize,
    /// Projects and domains by id for token validation, when the read cache is on.
    cached: Option<ResourceReadCache>,
}

#[derive(Clone, Debug)]
struct ResourceReadCache {
    projects: GenerationCache<String, Option<Project>>,
    domains: GenerationCache<String, Option<Domain>>,
    /// (domain id, project name): how a login names its project scope.
    projects_by_name: GenerationCache<(String, String), Option<Project>>,
    domains_by_name: GenerationCache<String, Option<Domain>>,
}

/// Keystone's 409 text for a name already taken.
pub fn duplicate(entity: &str, name: &str) -> Error {
    Error::Conflict {
        what: format!("{entity} - Duplicate entry found with name {name}."),
    }
}

/// Turns the store's unique-violation into Keystone's duplicate message.
pub fn on_conflict<'a>(
    entity: &'static str,
    name: &'a str,
) -> impl FnOnce(StoreError) -> Error + 'a {
    move |e| match e {
        StoreError::Conflict { .. } => duplicate(entity, name),
        other => other.into(),
    }
}

impl ResourceService {
    pub fn new(
        store: Store,
        default_domain_id: String,
        revoke: RevokeService,
        max_project_tree_depth: usize,
    ) -> Self {
        ResourceService {
            store,
            default_domain_id,
            revoke,
            max_project_tree_depth,
            cached: None,
        }
    }

    /// Serves [`Self::cached_project`] and [`Self::cached_domain`] from memory under
    /// the state generation (see [`crate::cache`]).
    pub fn with_read_cache(mut self, capacity: u64, ttl: std::time::Duration) -> Self {
        let generation = self.store.generation();
        self.cached = Some(ResourceReadCache {
            projects: GenerationCache::new(generation.clone(), capacity, ttl).named("projects"),
            domains: GenerationCache::new(generation.clone(), capacity, ttl).named("domains"),
            projects_by_name: GenerationCache::new(generation.clone(), capacity, ttl)
                .named("projects_by_name"),
            domains_by_name: GenerationCache::new(generation.clone(), capacity, ttl)
                .named("domains_by_name"),
        });
        self
    }

    /// `get_project` for the token paths, from the read cache when it is on.
    /// Management reads use `get_project`, so an API client always sees the database.
    pub async fn cached_project(&self, id: &str) -> Result<Project> {
        self.find_cached_project(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find project: {id}.")))
    }

    pub async fn find_cached_project(&self, id: &str) -> Result<Option<Project>> {
        let cache = self.cached.as_ref().map(|c| &c.projects);
        Ok(read_through(cache, id.to_string(), || self.store.get_project(id)).await?)
    }

    /// `find_project_by_name` for the token paths; see [`Self::cached_project`].
    pub async fn find_cached_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> Result<Option<Project>> {
        let cache = self.cached.as_ref().map(|c| &c.projects_by_name);
        let key = (domain_id.to_string(), name.to_string());
        Ok(read_through(cache, key, || {
            self.store.get_project_by_name(domain_id, name)
        })
        .await?)
    }

    /// `find_domain` for the token paths; see [`Self::cached_project`].
    pub async fn find_cached_domain(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<Domain>> {
        // Keystone: when both are given, the name wins (as in `find_domain`).
        Ok(match (name, id) {
            (Some(name), _) => {
                let cache = self.cached.as_ref().map(|c| &c.domains_by_name);
                read_through(cache, name.to_string(), || {
                    self.store.get_domain_by_name(name)
                })
                .await?
            }
            (None, Some(id)) => {
                let cache = self.cached.as_ref().map(|c| &c.domains);
                read_through(cache, id.to_string(), || self.store.get_domain(id)).await?
            }
            (None, None) => None,
        })
    }

    /// `get_domain` for the token paths; see [`Self::cached_project`].
    pub async fn cached_domain(&self, id: &str) -> Result<Domain> {
        self.find_cached_domain(Some(id), None)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find domain: {id}.")))
    }

    pub fn default_domain_id(&self) -> &str {
        &self.default_domain_id
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn get_domain(&self, id: &str) -> Result<Domain> {
        self.store
            .get_domain(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find domain: {id}.")))
    }

    pub async fn find_domain(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<Domain>> {
        // Keystone: when both are given, the name wins.
        Ok(match (name, id) {
            (Some(name), _) => self.store.get_domain_by_name(name).await?,
            (None, Some(id)) => self.store.get_domain(id).await?,
            (None, None) => None,
        })
    }

    /// `GET /v3/domains`: one page in id order, as Keystone 30 pages it (its domains
    /// are rows of the project table, so a project id is an acceptable marker too).
    pub async fn list_domains(
        &self,
        name: Option<&str>,
        enabled: Option<bool>,
        page: &PageRequest,
    ) -> Result<Page<Domain>> {
        if let Some(marker) = &page.marker {
            if self.store.get_domain(marker).await?.is_none()
                && self.store.get_project(marker).await?.is_none()
            {
                return Err(marker_not_found(marker));
            }
        }
        let domains = self.store.list_domains_page(name, enabled, page).await?;
        Ok(Page::from_overfetch(domains, page.limit))
    }

    pub async fn create_domain(&self, domain: Domain) -> Result<Domain> {
        self.store
            .create_domain(&domain)
            .await
            .map_err(on_conflict("domain", &domain.name))?;
        Ok(domain)
    }

    /// Disabling needs no revocation event: every validation re-checks the domain.
    pub async fn update_domain(&self, domain: Domain) -> Result<Domain> {
        self.store
            .update_domain(&domain)
            .await
            .map_err(on_conflict("domain", &domain.name))?;
        Ok(domain)
    }

    pub async fn delete_domain(&self, id: &str) -> Result<()> {
        let domain = self.get_domain(id).await?;
        if id == self.default_domain_id {
            return Err(Error::Forbidden {
                detail: "the default domain cannot be deleted".into(),
            });
        }
        if domain.enabled {
            return Err(Error::validation_forbidden(
                "Cannot delete a domain that is enabled, please disable it first.",
            ));
        }
        self.store.delete_domain_cascade(id).await?;
        Ok(())
    }

    pub async fn get_project(&self, id: &str) -> Result<Project> {
        self.store
            .get_project(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find project: {id}.")))
    }

    pub async fn find_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> Result<Option<Project>> {
        Ok(self.store.get_project_by_name(domain_id, name).await?)
    }

    /// Projects as the projects API shows them (with their tags), for every listing
    /// that returns projects.
    /// One query for all their tags, whatever the number of projects.
    pub async fn project_views(&self, projects: Vec<Project>) -> Result<Vec<ProjectView>> {
        let ids: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
        let mut tags: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for (project_id, tag) in self.store.list_tags_of_projects(&ids).await? {
            tags.entry(project_id).or_default().push(tag);
        }
        Ok(projects
            .into_iter()
            .map(|project| {
                let tags = tags.remove(&project.id).unwrap_or_default();
                ProjectView::Project { project, tags }
            })
            .collect())
    }

    /// The projects among `ids` (those that exist), with their tags: two queries.
    pub async fn project_views_by_ids(&self, ids: &[String]) -> Result<Vec<ProjectView>> {
        let projects = self.store.list_projects_by_ids(ids).await?;
        self.project_views(projects).await
    }
}
