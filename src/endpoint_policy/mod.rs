//! OS-ENDPOINT-POLICY (Keystone's `endpoint_policy_api`): which stored policy applies
//! to an endpoint. An association names an endpoint, a service, or a service in a
//! region; an endpoint's policy is its own association's, else the one for its
//! service in its region or the nearest parent region, else its service's.

use std::collections::HashSet;

use crate::catalog::{CatalogProvider, EndpointFilters};
use crate::error::{Error, Result};
use crate::model::{new_id, Endpoint, PolicyTarget, StoredPolicy};
use crate::policies::PolicyService;
use crate::store::Store;

#[derive(Clone)]
pub struct EndpointPolicyService {
    store: Store,
    catalog: CatalogProvider,
    policies: PolicyService,
}

fn association_not_found() -> Error {
    Error::not_found("Could not find policy association.")
}

impl EndpointPolicyService {
    pub fn new(store: Store, catalog: CatalogProvider, policies: PolicyService) -> Self {
        EndpointPolicyService {
            store,
            catalog,
            policies,
        }
    }

    /// Ties the policy to `target`, replacing the policy it had.
    pub async fn associate(&self, policy_id: &str, target: &PolicyTarget) -> Result<()> {
        Ok(self
            .store
            .associate_policy(policy_id, target, &new_id())
            .await?)
    }

    /// 404 "Could not find policy association." unless exactly this association exists.
    pub async fn check(&self, policy_id: &str, target: &PolicyTarget) -> Result<()> {
        if self
            .store
            .policy_association_exists(policy_id, target)
            .await?
        {
            Ok(())
        } else {
            Err(association_not_found())
        }
    }

    /// Removes the association if it exists (Keystone answers 204 either way).
    pub async fn unassociate(&self, policy_id: &str, target: &PolicyTarget) -> Result<()> {
        Ok(self.store.unassociate_policy(policy_id, target).await?)
    }

    /// Every endpoint the policy's associations cover, in association order; a
    /// service in a region covers the endpoints of that region and its subregions.
    pub async fn endpoints_for_policy(&self, policy_id: &str) -> Result<Vec<Endpoint>> {
        let associations = self.store.policy_associations(policy_id).await?;
        if associations.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints = self
            .catalog
            .list_endpoints(&EndpointFilters::default())
            .await?;
        let regions = self.catalog.list_regions(None).await?;
        let mut found = Vec::new();
        for a in associations {
            match (a.endpoint_id, a.service_id, a.region_id) {
                (Some(endpoint_id), None, None) => {
                    found.push(self.catalog.get_endpoint(&endpoint_id).await?);
                }
                (None, Some(service_id), None) => found.extend(
                    endpoints
                        .iter()
                        .filter(|e| e.service_id == service_id)
                        .cloned(),
                ),
                (None, Some(service_id), Some(region_id)) => {
                    // Walk down the region tree, each region once (a cycle ends it).
                    let mut seen = HashSet::new();
                    let mut pending = vec![region_id];
                    while let Some(region) = pending.pop() {
                        if !seen.insert(region.clone()) {
                            continue;
                        }
                        found.extend(
                            endpoints
                                .iter()
                                .filter(|e| {
                                    e.service_id == service_id
                                        && e.region_id.as_deref() == Some(region.as_str())
                                })
                                .cloned(),
                        );
                        // Reversed so children are visited in listing order.
                        pending.extend(
                            regions
                                .iter()
                                .rev()
                                .filter(|r| r.parent_region_id.as_deref() == Some(region.as_str()))
                                .map(|r| r.id.clone()),
                        );
                    }
                }
                _ => tracing::warn!(policy_id, "unsupported policy association ignored"),
            }
        }
        Ok(found)
    }

    /// Keystone's `get_policy_for_endpoint`: the endpoint's own association, else its
    /// service in its region or the nearest parent region, else its service.
    pub async fn policy_for_endpoint(&self, endpoint_id: &str) -> Result<StoredPolicy> {
        if let Some(policy_id) = self
            .store
            .policy_for_target(&PolicyTarget::Endpoint(endpoint_id.to_string()))
            .await?
        {
            return self.policies.get(&policy_id).await;
        }
        let endpoint = self.catalog.get_endpoint(endpoint_id).await?;
        let mut region_id = endpoint.region_id.clone();
        let mut examined = HashSet::new();
        while let Some(region) = region_id.take() {
            let target = PolicyTarget::ServiceInRegion {
                service_id: endpoint.service_id.clone(),
                region_id: region.clone(),
            };
            if let Some(policy_id) = self.store.policy_for_target(&target).await? {
                return self.policies.get(&policy_id).await;
            }
            examined.insert(region.clone());
            let parent = self.catalog.get_region(&region).await?.parent_region_id;
            match parent {
                Some(p) if examined.contains(&p) => {
                    tracing::error!(region_id = %p, "circular reference in the region tree");
                }
                other => region_id = other,
            }
        }
        if let Some(policy_id) = self
            .store
            .policy_for_target(&PolicyTarget::Service(endpoint.service_id.clone()))
            .await?
        {
            return self.policies.get(&policy_id).await;
        }
        Err(Error::not_found(format!(
            "No policy is associated with endpoint {endpoint_id}."
        )))
    }
}
