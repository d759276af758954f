//! The service catalog: regions, services and endpoints (Keystone's
//! `catalog_api`), OS-EP-FILTER's project associations and endpoint groups, and
//! the catalog a token carries.
//!
//! [`CatalogProvider::catalog`] is the one place a token catalog is computed. Its
//! inputs (the service and endpoint lists, each project's endpoint filter) and its
//! results are cached under the state generation (Keystone's
//! `COMPUTED_CATALOG_REGION`, which every catalog write invalidates).

mod filter;
mod manage;
pub mod url;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::cache::GenerationCache;
use crate::error::{Error, Result};
use crate::model::{Endpoint, EndpointGroup, ProjectLink};
use crate::store::Store;

pub use manage::{EndpointFilters, EndpointPatch, RegionPatch};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CatalogEndpoint {
    pub id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub region: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CatalogService {
    pub endpoints: Vec<CatalogEndpoint>,
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub name: String,
}

/// A token's catalog as JSON, rendered once per (project, user) and generation:
/// every token body that carries it splices these bytes instead of serialising
/// each endpoint again (that was a fifth of a rescope).
#[derive(Debug)]
pub struct TokenCatalog(Box<serde_json::value::RawValue>);

impl TokenCatalog {
    pub fn render(services: &[CatalogService]) -> Result<Self> {
        serde_json::value::to_raw_value(services)
            .map(TokenCatalog)
            .map_err(Error::internal)
    }
}

impl Serialize for TokenCatalog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// What every catalog is built from.
struct CatalogSources {
    services: Vec<crate::model::Service>,
    endpoints: Vec<Endpoint>,
}

#[derive(Clone)]
pub struct CatalogProvider {
    store: Store,
    /// (project, user) -> catalog; any catalog, project or endpoint-filter write
    /// moves the generation and drops it.
    cache: GenerationCache<(Option<String>, String), Arc<TokenCatalog>>,
    /// The service and endpoint lists, shared by every catalog built in a generation.
    sources: GenerationCache<(), Arc<CatalogSources>>,
    /// Project -> the endpoint ids its OS-EP-FILTER associations allow (None: all).
    filters: GenerationCache<String, Option<Arc<HashSet<String>>>>,
}

impl std::fmt::Debug for CatalogProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogProvider").finish_non_exhaustive()
    }
}

/// The endpoint attributes an endpoint group may filter on.
pub const GROUP_FILTER_KEYS: &[&str] = &["service_id", "region_id", "interface"];

/// Keystone's `get_endpoints_filtered_by_endpoint_group` test for one endpoint:
/// every filter must equal the endpoint's attribute (a null `region_id` filter
/// matches endpoints without a region).
pub fn group_matches(filters: &serde_json::Map<String, Value>, e: &Endpoint) -> bool {
    filters.iter().all(|(k, v)| {
        let actual = match k.as_str() {
            "interface" => Value::String(e.interface.clone()),
            "service_id" => Value::String(e.service_id.clone()),
            "region_id" => e
                .region_id
                .as_ref()
                .map_or(Value::Null, |r| Value::String(r.clone())),
            "enabled" => Value::Bool(e.enabled),
            "url" => Value::String(e.url.clone()),
            "id" => Value::String(e.id.clone()),
            other => e.extra.get(other).cloned().unwrap_or(Value::Null),
        };
        &actual == v
    })
}

impl CatalogProvider {
    pub fn new(store: Store) -> Self {
        let generation = store.generation().clone();
        let ttl = std::time::Duration::from_secs(600);
        CatalogProvider {
            store,
            cache: GenerationCache::new(generation.clone(), 10_000, ttl).named("catalog"),
            sources: GenerationCache::new(generation.clone(), 1, ttl).named("catalog_sources"),
            filters: GenerationCache::new(generation, 10_000, ttl).named("endpoint_filters"),
        }
    }

    /// `catalog()`, from the cache while no write has happened since it was built.
    pub async fn cached_catalog(
        &self,
        project_id: Option<&str>,
        user_id: &str,
    ) -> Result<Arc<TokenCatalog>> {
        let key = (project_id.map(str::to_string), user_id.to_string());
        self.cache
            .get_or_load(key, || async {
                let services = self.catalog(project_id, user_id).await?;
                Ok(Arc::new(TokenCatalog::render(&services)?))
            })
            .await
    }

    async fn sources(&self) -> Result<Arc<CatalogSources>> {
        self.sources
            .get_or_load((), || async {
                Ok::<_, Error>(Arc::new(CatalogSources {
                    services: self.store.list_services().await?,
                    endpoints: self.store.list_endpoints().await?,
                }))
            })
            .await
    }

    /// The endpoint ids a project's associations allow, or None when they select
    /// nothing (then the project gets the full catalog).
    async fn project_filter(
        &self,
        project_id: &str,
        all: &[Endpoint],
    ) -> Result<Option<Arc<HashSet<String>>>> {
        self.filters
            .get_or_load(project_id.to_string(), || async {
                let ids: HashSet<String> = self
                    .endpoints_for_project_from(project_id, all)
                    .await?
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                Ok::<_, Error>((!ids.is_empty()).then(|| Arc::new(ids)))
            })
            .await
    }

    /// The catalog of a token, as Keystone's SQL driver builds it
    /// (`get_v3_catalog`): enabled services with their enabled endpoints, URL
    /// templates filled from the token (an endpoint whose template cannot be
    /// filled is left out). Services without endpoints stay, as in Keystone.
    ///
    /// Endpoint filtering: when the project has endpoints associated with it
    /// (directly or through endpoint groups) only those endpoints remain, and
    /// services left without endpoints are dropped. A project whose
    /// associations select no endpoint gets the full catalog, as in Keystone
    /// (`return_all_endpoints_if_no_filter`, default true).
    pub async fn catalog(
        &self,
        project_id: Option<&str>,
        user_id: &str,
    ) -> Result<Vec<CatalogService>> {
        let sources = self.sources().await?;
        let endpoints = &sources.endpoints;
        let allowed = match project_id {
            Some(p) => self.project_filter(p, endpoints).await?,
            None => None,
        };
        let mut out = Vec::new();
        for s in sources.services.iter().filter(|s| s.enabled) {
            let eps: Vec<CatalogEndpoint> = endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .filter(|e| allowed.as_ref().is_none_or(|a| a.contains(&e.id)))
                .filter_map(|e| {
                    url::catalog_url(&e.url, project_id, user_id).map(|url| CatalogEndpoint {
                        id: e.id.clone(),
                        interface: e.interface.clone(),
                        region_id: e.region_id.clone(),
                        url,
                        region: e.region_id.clone(),
                    })
                })
                .collect();
            if allowed.is_some() && eps.is_empty() {
                continue;
            }
            out.push(CatalogService {
                endpoints: eps,
                id: s.id.clone(),
                service_type: s.service_type.clone(),
                name: s.name.clone(),
            });
        }
        Ok(out)
    }

    /// Keystone's `list_endpoints_for_project`: the directly associated
    /// endpoints, then those selected by the project's endpoint groups, each
    /// once, in that order. `all` is the current endpoint list.
    async fn endpoints_for_project_from(
        &self,
        project_id: &str,
        all: &[Endpoint],
    ) -> Result<Vec<Endpoint>> {
        let by_id: HashMap<&str, &Endpoint> = all.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in self
            .store
            .linked_ids_for_project(ProjectLink::Endpoint, project_id)
            .await?
        {
            if let Some(e) = by_id.get(id.as_str()) {
                if seen.insert(e.id.clone()) {
                    out.push((*e).clone());
                }
            }
        }
        for group in self.groups_of_project(project_id).await? {
            for e in all.iter().filter(|e| group_matches(&group.filters, e)) {
                if seen.insert(e.id.clone()) {
                    out.push(e.clone());
                }
            }
        }
        Ok(out)
    }

    async fn groups_of_project(&self, project_id: &str) -> Result<Vec<EndpointGroup>> {
        let mut groups = Vec::new();
        for id in self
            .store
            .linked_ids_for_project(ProjectLink::EndpointGroup, project_id)
            .await?
        {
            match self.store.get_endpoint_group(&id).await? {
                Some(g) => groups.push(g),
                // Keystone: a dangling membership makes the whole list empty.
                None => return Ok(Vec::new()),
            }
        }
        Ok(groups)
    }

    async fn require_project(&self, id: &str) -> Result<crate::model::Project> {
        self.store
            .get_project(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find project: {id}.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(interface: &str, region: Option<&str>) -> Endpoint {
        Endpoint {
            id: "e".into(),
            service_id: "s".into(),
            interface: interface.into(),
            url: "http://x".into(),
            region_id: region.map(str::to_string),
            enabled: true,
            extra: Default::default(),
        }
    }

    #[test]
    fn group_filters_match_exactly() {
        let f = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(group_matches(
            &f(serde_json::json!({"interface": "public"})),
            &ep("public", None)
        ));
        assert!(!group_matches(
            &f(serde_json::json!({"interface": "public", "service_id": "t"})),
            &ep("public", None)
        ));
        assert!(group_matches(
            &f(serde_json::json!({"region_id": null})),
            &ep("admin", None)
        ));
        assert!(!group_matches(
            &f(serde_json::json!({"region_id": "r"})),
            &ep("admin", None)
        ));
        assert!(group_matches(&f(serde_json::json!({})), &ep("admin", None)));
    }
}
