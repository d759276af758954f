//! OS-EP-FILTER: which endpoints a project's tokens see. Keystone's checks
//! and messages (`keystone/api/os_ep_filter.py`, `catalog/backends/sql.py`).

use super::{group_matches, CatalogProvider};
use crate::error::{Error, Result};
use crate::model::{Endpoint, EndpointGroup, Project, ProjectLink};
use crate::store::StoreError;

fn group_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find Endpoint Group: {id}."))
}

/// `handle_conflicts` with positional string arguments: no name to quote.
fn duplicate(kind: &str) -> impl FnOnce(StoreError) -> Error + '_ {
    move |e| match e {
        StoreError::Conflict { .. } => Error::Conflict {
            what: format!("{kind} - Duplicate entry."),
        },
        other => other.into(),
    }
}

fn association_not_found(endpoint_id: &str, project_id: &str) -> Error {
    Error::not_found(format!(
        "Endpoint {endpoint_id} not found in project {project_id}"
    ))
}

fn group_association_not_found() -> Error {
    Error::not_found("Endpoint Group Project Association not found")
}

impl CatalogProvider {
    /// Keystone's order: unknown endpoint, unknown project (404s), then 409
    /// for a repeated association.
    pub async fn add_endpoint_to_project(&self, project_id: &str, endpoint_id: &str) -> Result<()> {
        self.get_endpoint(endpoint_id).await?;
        self.require_project(project_id).await?;
        self.store
            .link_project(ProjectLink::Endpoint, project_id, endpoint_id)
            .await
            .map_err(duplicate("project_endpoint"))
    }

    pub async fn check_endpoint_in_project(
        &self,
        project_id: &str,
        endpoint_id: &str,
    ) -> Result<()> {
        self.get_endpoint(endpoint_id).await?;
        self.require_project(project_id).await?;
        if !self
            .store
            .project_link_exists(ProjectLink::Endpoint, project_id, endpoint_id)
            .await?
        {
            return Err(association_not_found(endpoint_id, project_id));
        }
        Ok(())
    }

    /// Keystone checks only the association itself here.
    pub async fn remove_endpoint_from_project(
        &self,
        project_id: &str,
        endpoint_id: &str,
    ) -> Result<()> {
        if !self
            .store
            .unlink_project(ProjectLink::Endpoint, project_id, endpoint_id)
            .await?
        {
            return Err(association_not_found(endpoint_id, project_id));
        }
        Ok(())
    }

    /// The endpoints the project's tokens are restricted to (direct and through
    /// endpoint groups, disabled ones included), as the token catalog sees them.
    pub async fn list_endpoints_for_project(&self, project_id: &str) -> Result<Vec<Endpoint>> {
        self.require_project(project_id).await?;
        let all = self.store.list_endpoints().await?;
        self.endpoints_for_project_from(project_id, &all).await
    }

    pub async fn list_projects_for_endpoint(&self, endpoint_id: &str) -> Result<Vec<Project>> {
        self.get_endpoint(endpoint_id).await?;
        let ids = self
            .store
            .projects_linked_to(ProjectLink::Endpoint, endpoint_id)
            .await?;
        self.projects(ids).await
    }

    async fn projects(&self, ids: Vec<String>) -> Result<Vec<Project>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.store.get_project(&id).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    pub async fn create_endpoint_group(&self, group: EndpointGroup) -> Result<EndpointGroup> {
        self.store.create_endpoint_group(&group).await?;
        Ok(group)
    }

    pub async fn get_endpoint_group(&self, id: &str) -> Result<EndpointGroup> {
        self.store
            .get_endpoint_group(id)
            .await?
            .ok_or_else(|| group_not_found(id))
    }

    pub async fn list_endpoint_groups(&self, name: Option<&str>) -> Result<Vec<EndpointGroup>> {
        Ok(self
            .store
            .list_endpoint_groups()
            .await?
            .into_iter()
            .filter(|g| name.is_none_or(|n| g.name == n))
            .collect())
    }

    pub async fn update_endpoint_group(&self, group: EndpointGroup) -> Result<EndpointGroup> {
        if !self.store.update_endpoint_group(&group).await? {
            return Err(group_not_found(&group.id));
        }
        Ok(group)
    }

    /// Takes the group's project associations with it.
    pub async fn delete_endpoint_group(&self, id: &str) -> Result<()> {
        if !self.store.delete_endpoint_group(id).await? {
            return Err(group_not_found(id));
        }
        Ok(())
    }

    /// Keystone does not check that the group exists here: an unknown group
    /// simply has no projects.
    pub async fn list_projects_for_endpoint_group(&self, group_id: &str) -> Result<Vec<Project>> {
        let ids = self
            .store
            .projects_linked_to(ProjectLink::EndpointGroup, group_id)
            .await?;
        self.projects(ids).await
    }

    /// Every endpoint (enabled or not) matching the group's filters.
    pub async fn list_endpoints_in_group(&self, group_id: &str) -> Result<Vec<Endpoint>> {
        let group = self.get_endpoint_group(group_id).await?;
        Ok(self
            .store
            .list_endpoints()
            .await?
            .into_iter()
            .filter(|e| group_matches(&group.filters, e))
            .collect())
    }

    /// Keystone's order for the group <-> project routes: project, then group.
    async fn require_project_and_group(&self, group_id: &str, project_id: &str) -> Result<()> {
        self.require_project(project_id).await?;
        self.get_endpoint_group(group_id).await?;
        Ok(())
    }

    pub async fn add_endpoint_group_to_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> Result<()> {
        self.require_project_and_group(group_id, project_id).await?;
        self.store
            .link_project(ProjectLink::EndpointGroup, project_id, group_id)
            .await
            .map_err(duplicate("project_endpoint_group"))
    }

    pub async fn check_endpoint_group_in_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> Result<()> {
        self.require_project_and_group(group_id, project_id).await?;
        if !self
            .store
            .project_link_exists(ProjectLink::EndpointGroup, project_id, group_id)
            .await?
        {
            return Err(group_association_not_found());
        }
        Ok(())
    }

    pub async fn remove_endpoint_group_from_project(
        &self,
        group_id: &str,
        project_id: &str,
    ) -> Result<()> {
        self.require_project_and_group(group_id, project_id).await?;
        if !self
            .store
            .unlink_project(ProjectLink::EndpointGroup, project_id, group_id)
            .await?
        {
            return Err(group_association_not_found());
        }
        Ok(())
    }

    pub async fn list_endpoint_groups_for_project(
        &self,
        project_id: &str,
    ) -> Result<Vec<EndpointGroup>> {
        self.require_project(project_id).await?;
        self.groups_of_project(project_id).await
    }
}
