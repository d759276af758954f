//! Domains and projects: lookups by id or name with Keystone's error messages.

use crate::error::{Error, Result};
use crate::store::{Domain, Project, Store};

#[derive(Clone, Debug)]
pub struct ResourceService {
    store: Store,
}

impl ResourceService {
    pub fn new(store: Store) -> Self {
        ResourceService { store }
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
}
