//! Regions, services and endpoints with Keystone's rules (`catalog/core.py`
//! and `catalog/backends/sql.py`): which lookups come first, which failure is a
//! 400 and which a 404, and what a delete takes with it.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::CatalogProvider;
use crate::auth::missing;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Region, Service};
use crate::store::StoreError;

fn region_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find region: {id}."))
}

fn service_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find service: {id}."))
}

fn endpoint_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find endpoint: {id}."))
}

/// A PATCH of a region: `None` leaves an attribute alone.
#[derive(Debug, Default, Clone)]
pub struct RegionPatch {
    /// `Some(None)` is an explicit null, stored as `''` (Keystone).
    pub description: Option<Option<String>>,
    pub parent_region_id: Option<Option<String>>,
    pub extra: Map<String, Value>,
}

/// `GET /v3/endpoints` filters (exact matches).
#[derive(Debug, Default, Clone)]
pub struct EndpointFilters {
    pub interface: Option<String>,
    pub service_id: Option<String>,
    pub region_id: Option<String>,
}

/// A PATCH of an endpoint: `None` leaves an attribute alone.
#[derive(Debug, Default, Clone)]
pub struct EndpointPatch {
    pub interface: Option<String>,
    pub service_id: Option<String>,
    pub url: Option<String>,
    pub region_id: Option<Option<String>>,
    /// The pre-v3.2 `region` attribute: used as `region_id` (and the region
    /// created) when `region_id` is absent or null.
    pub legacy_region: Option<String>,
    pub enabled: Option<bool>,
    pub extra: Map<String, Value>,
}

impl CatalogProvider {
    pub async fn get_region(&self, id: &str) -> Result<Region> {
        self.store
            .get_region(id)
            .await?
            .ok_or_else(|| region_not_found(id))
    }

    pub async fn list_regions(&self, parent_region_id: Option<&str>) -> Result<Vec<Region>> {
        Ok(self
            .store
            .list_regions()
            .await?
            .into_iter()
            .filter(|r| parent_region_id.is_none_or(|p| r.parent_region_id.as_deref() == Some(p)))
            .collect())
    }

    /// Keystone's order: a taken id is 409 ("Duplicate ID"), then an unknown
    /// parent is 404 for the parent.
    pub async fn create_region(&self, region: Region) -> Result<Region> {
        if self.store.get_region(&region.id).await?.is_some() {
            return Err(region_conflict(&region.id));
        }
        if let Some(parent) = &region.parent_region_id {
            if self.store.get_region(parent).await?.is_none() {
                return Err(region_not_found(parent));
            }
        }
        match self.store.insert_region(&region).await {
            Ok(()) => Ok(region),
            Err(StoreError::Conflict { .. }) => Err(region_conflict(&region.id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Keystone's order: unknown new parent (404), unknown region (404), then a
    /// parent chain leading back to the region (400).
    pub async fn update_region(&self, id: &str, patch: RegionPatch) -> Result<Region> {
        if let Some(Some(parent)) = &patch.parent_region_id {
            if self.store.get_region(parent).await?.is_none() {
                return Err(region_not_found(parent));
            }
        }
        let mut region = self.get_region(id).await?;
        if let Some(d) = patch.description {
            region.description = d.unwrap_or_default();
        }
        if let Some(p) = patch.parent_region_id {
            region.parent_region_id = p;
        }
        region.extra.extend(patch.extra);
        self.ensure_no_cycle(&region).await?;
        if !self.store.update_region(&region).await? {
            return Err(region_not_found(id));
        }
        Ok(region)
    }

    /// `_ensure_no_circle_in_hierarchical_regions`: walk up from the new parent;
    /// meeting the region itself is a cycle. The message names the region being
    /// updated, because that is the value Keystone's loop holds when it stops.
    async fn ensure_no_cycle(&self, region: &Region) -> Result<()> {
        let mut seen = HashSet::new();
        let mut parent = region.parent_region_id.clone();
        while let Some(p) = parent {
            if p == region.id || !seen.insert(p.clone()) {
                return Err(Error::validation(format!(
                    "The specified parent region {} would create a circular region hierarchy.",
                    region.id
                )));
            }
            parent = self.get_region(&p).await?.parent_region_id;
        }
        Ok(())
    }

    /// Deletes the region and, as Keystone does, every region below it; refused
    /// (403) when any of them has endpoints.
    pub async fn delete_region(&self, id: &str) -> Result<()> {
        self.get_region(id).await?;
        let all = self.store.list_regions().await?;
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in &all {
            if let Some(p) = &r.parent_region_id {
                children.entry(p.as_str()).or_default().push(r.id.as_str());
            }
        }
        // Post-order: children before their parent, for the foreign key.
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        fn visit<'a>(
            id: &'a str,
            children: &HashMap<&'a str, Vec<&'a str>>,
            seen: &mut HashSet<&'a str>,
            order: &mut Vec<String>,
        ) {
            if !seen.insert(id) {
                return;
            }
            for c in children.get(id).map(Vec::as_slice).unwrap_or_default() {
                visit(c, children, seen, order);
            }
            order.push(id.to_string());
        }
        visit(id, &children, &mut seen, &mut order);
        if !self.store.delete_regions(&order).await? {
            return Err(Error::validation_forbidden(format!(
                "Unable to delete region {id} because it or its child regions have associated endpoints."
            )));
        }
        Ok(())
    }

    pub async fn get_service(&self, id: &str) -> Result<Service> {
        self.store
            .get_service(id)
            .await?
            .ok_or_else(|| service_not_found(id))
    }

    pub async fn list_services(
        &self,
        service_type: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<Service>> {
        Ok(self
            .store
            .list_services()
            .await?
            .into_iter()
            .filter(|s| service_type.is_none_or(|t| s.service_type == t))
            .filter(|s| name.is_none_or(|n| s.name == n))
            .collect())
    }

    pub async fn create_service(&self, service: Service) -> Result<Service> {
        self.store.create_service(&service).await?;
        Ok(service)
    }

    pub async fn update_service(&self, service: Service) -> Result<Service> {
        if !self.store.update_service(&service).await? {
            return Err(service_not_found(&service.id));
        }
        Ok(service)
    }

    /// Takes the service's endpoints (and their project associations) with it.
    pub async fn delete_service(&self, id: &str) -> Result<()> {
        if !self.store.delete_service(id).await? {
            return Err(service_not_found(id));
        }
        Ok(())
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<Endpoint> {
        self.store
            .get_endpoint(id)
            .await?
            .ok_or_else(|| endpoint_not_found(id))
    }

    pub async fn list_endpoints(&self, f: &EndpointFilters) -> Result<Vec<Endpoint>> {
        Ok(self
            .store
            .list_endpoints()
            .await?
            .into_iter()
            .filter(|e| f.interface.as_ref().is_none_or(|i| &e.interface == i))
            .filter(|e| f.service_id.as_ref().is_none_or(|s| &e.service_id == s))
            .filter(|e| {
                f.region_id
                    .as_ref()
                    .is_none_or(|r| e.region_id.as_ref() == Some(r))
            })
            .collect())
    }

    /// Keystone's `_assert_region_exists`: a 400, not a 404.
    async fn assert_region_exists(&self, region_id: Option<&str>) -> Result<()> {
        if let Some(r) = region_id {
            if self.store.get_region(r).await?.is_none() {
                return Err(Error::validation(missing(
                    "endpoint region_id",
                    "region table",
                )));
            }
        }
        Ok(())
    }

    /// Keystone's `_assert_service_exists`: a 400, not a 404.
    async fn assert_service_exists(&self, service_id: Option<&str>) -> Result<()> {
        if let Some(s) = service_id {
            if self.store.get_service(s).await?.is_none() {
                return Err(Error::validation(missing(
                    "endpoint service_id",
                    "service table",
                )));
            }
        }
        Ok(())
    }

    /// The legacy `region` attribute names a region that is created when
    /// missing (Keystone's `_validate_endpoint_region`). Done last, after every
    /// check that could still refuse the request, so a refusal writes nothing.
    async fn ensure_legacy_region(&self, region_id: &str) -> Result<()> {
        if self.store.get_region(region_id).await?.is_none() {
            self.store
                .create_region(&Region {
                    id: region_id.to_string(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: Map::new(),
                })
                .await?;
        }
        Ok(())
    }

    /// `legacy_region` is the pre-v3.2 `region` attribute, used when
    /// `region_id` is absent. Unknown region or service: 400.
    pub async fn create_endpoint(
        &self,
        mut endpoint: Endpoint,
        legacy_region: Option<String>,
    ) -> Result<Endpoint> {
        let (region_id, legacy) = resolve_region(Some(endpoint.region_id.clone()), legacy_region);
        endpoint.region_id = region_id.flatten();
        if !legacy {
            self.assert_region_exists(endpoint.region_id.as_deref())
                .await?;
        }
        self.assert_service_exists(Some(&endpoint.service_id))
            .await?;
        if let (true, Some(r)) = (legacy, &endpoint.region_id) {
            self.ensure_legacy_region(r).await?;
        }
        self.store.create_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Unknown endpoint: 404 (checked first, so nothing is created for it);
    /// unknown region or service: 400.
    pub async fn update_endpoint(&self, id: &str, patch: EndpointPatch) -> Result<Endpoint> {
        let mut endpoint = self.get_endpoint(id).await?;
        let (region_id, legacy) = resolve_region(patch.region_id, patch.legacy_region);
        if !legacy {
            if let Some(r) = &region_id {
                self.assert_region_exists(r.as_deref()).await?;
            }
        }
        self.assert_service_exists(patch.service_id.as_deref())
            .await?;
        if let (true, Some(Some(r))) = (legacy, &region_id) {
            self.ensure_legacy_region(r).await?;
        }
        if let Some(i) = patch.interface {
            endpoint.interface = i;
        }
        if let Some(s) = patch.service_id {
            endpoint.service_id = s;
        }
        if let Some(u) = patch.url {
            endpoint.url = u;
        }
        if let Some(r) = region_id {
            endpoint.region_id = r;
        }
        if let Some(e) = patch.enabled {
            endpoint.enabled = e;
        }
        endpoint.extra.extend(patch.extra);
        if !self.store.update_endpoint(&endpoint).await? {
            return Err(endpoint_not_found(id));
        }
        Ok(endpoint)
    }

    /// Takes the endpoint's project associations with it.
    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        if !self.store.delete_endpoint(id).await? {
            return Err(endpoint_not_found(id));
        }
        Ok(())
    }
}

/// Keystone's `_validate_endpoint_region`: a non-null legacy `region` stands
/// in for an absent or null `region_id`, and its region is created on demand
/// (true in the result) instead of being checked.
fn resolve_region(
    region_id: Option<Option<String>>,
    legacy: Option<String>,
) -> (Option<Option<String>>, bool) {
    match (region_id, legacy) {
        (None | Some(None), Some(r)) => (Some(Some(r)), true),
        (r, _) => (r, false),
    }
}

/// Keystone's text, double period included: `Duplicate ID, %s.` inside
/// `Conflict occurred attempting to store %(type)s - %(details)s.`.
fn region_conflict(id: &str) -> Error {
    Error::Conflict {
        what: format!("region - Duplicate ID, {id}.."),
    }
}
