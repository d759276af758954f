//! Stored policies (Keystone's `policy_api`, `/v3/policies`): blobs a deployment
//! keeps in Keystone for its services to fetch. Not to be confused with
//! `crate::policy`, the enforcer of keystone-rs's own rules: nothing here is ever
//! enforced.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::StoredPolicy;
use crate::store::Store;

#[derive(Clone)]
pub struct PolicyService {
    store: Store,
}

/// Keystone's `PolicyNotFound`.
pub fn policy_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find policy: {id}."))
}

/// What `PATCH /v3/policies/{id}` may change: any attribute, merged over the old ones.
#[derive(Clone, Debug, Default)]
pub struct PolicyPatch {
    pub policy_type: Option<String>,
    pub blob: Option<String>,
    pub extra: Map<String, Value>,
}

impl PolicyService {
    pub fn new(store: Store) -> Self {
        PolicyService { store }
    }

    pub async fn get(&self, id: &str) -> Result<StoredPolicy> {
        self.store
            .get_policy(id)
            .await?
            .ok_or_else(|| policy_not_found(id))
    }

    pub async fn list(&self, policy_type: Option<&str>) -> Result<Vec<StoredPolicy>> {
        Ok(self.store.list_policies(policy_type).await?)
    }

    pub async fn create(&self, p: StoredPolicy) -> Result<StoredPolicy> {
        self.store
            .create_policy(&p)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict { .. } => Error::Conflict {
                    what: format!("policy - Duplicate ID, {}..", p.id),
                },
                other => other,
            })?;
        Ok(p)
    }

    /// Keystone's `update_policy`: the old dict updated with the new attributes.
    pub async fn update(&self, id: &str, patch: PolicyPatch) -> Result<StoredPolicy> {
        let mut p = self.get(id).await?;
        if let Some(t) = patch.policy_type {
            p.policy_type = t;
        }
        if let Some(b) = patch.blob {
            p.blob = b;
        }
        for (k, v) in patch.extra {
            p.extra.insert(k, v);
        }
        if !self.store.update_policy(&p).await? {
            return Err(policy_not_found(id));
        }
        Ok(p)
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        if !self.store.delete_policy(id).await? {
            return Err(policy_not_found(id));
        }
        Ok(())
    }
}
