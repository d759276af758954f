//! Regions, services, endpoints, and OS-EP-FILTER's project associations and
//! endpoint groups. Every write commits with `WriteTx::commit`, which announces it: each can change
//! the catalog a token carries.

use sqlx::any::AnyRow;

use super::{boolean, int, json_extra, opt_text, text, DbContext, Store, StoreError, StoreResult};
use crate::model::*;

type Extra = serde_json::Map<String, serde_json::Value>;

fn service_from(row: &AnyRow) -> StoreResult<Service> {
    Ok(Service {
        id: text(row, "id")?,
        service_type: text(row, "type")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        enabled: boolean(row, "enabled")?,
        extra: json_extra(row)?,
    })
}

fn endpoint_from(row: &AnyRow) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: text(row, "id")?,
        service_id: text(row, "service_id")?,
        interface: text(row, "interface")?,
        url: text(row, "url")?,
        region_id: opt_text(row, "region_id")?,
        enabled: boolean(row, "enabled")?,
        extra: json_extra(row)?,
    })
}

fn extra_json(extra: &Extra) -> String {
    serde_json::Value::Object(extra.clone()).to_string()
}

fn region_from(row: &AnyRow) -> StoreResult<Region> {
    Ok(Region {
        id: text(row, "id")?,
        description: text(row, "description")?,
        parent_region_id: opt_text(row, "parent_region_id")?,
        extra: json_extra(row)?,
    })
}

fn endpoint_group_from(row: &AnyRow) -> StoreResult<EndpointGroup> {
    let raw = text(row, "filters")?;
    let filters = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => {
            return Err(StoreError::Corrupt {
                context: "reading endpoint group filters",
                detail: "filters is not a JSON object".into(),
            })
        }
    };
    Ok(EndpointGroup {
        id: text(row, "id")?,
        name: text(row, "name")?,
        description: opt_text(row, "description")?,
        filters,
    })
}

const REGION_COLS: &str = "id, description, parent_region_id, extra";
const SERVICE_COLS: &str = "id, type, name, description, enabled, extra";
const ENDPOINT_COLS: &str = "id, service_id, interface, url, region_id, enabled, extra";
const ENDPOINT_GROUP_COLS: &str = "id, name, description, filters";

impl Store {
    pub async fn get_region(&self, id: &str) -> StoreResult<Option<Region>> {
        sqlx::query(&format!("SELECT {REGION_COLS} FROM region WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a region")?
            .as_ref()
            .map(region_from)
            .transpose()
    }

    pub async fn list_regions(&self) -> StoreResult<Vec<Region>> {
        sqlx::query(&format!("SELECT {REGION_COLS} FROM region ORDER BY id"))
            .fetch_all(self.reader())
            .await
            .ctx("listing regions")?
            .iter()
            .map(region_from)
            .collect()
    }

    /// Idempotent: an existing region is kept (bootstrap's semantics).
    pub async fn create_region(&self, r: &Region) -> StoreResult<()> {
        match self.insert_region(r).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Inserts a region; an existing id is a `Conflict`.
    pub async fn insert_region(&self, r: &Region) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a region").await?;
        sqlx::query(
            "INSERT INTO region (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.id)
        .bind(&r.description)
        .bind(&r.parent_region_id)
        .bind(extra_json(&r.extra))
        .execute(tx.conn())
        .await
        .ctx("creating a region")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_region(&self, r: &Region) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a region").await?;
        let done = sqlx::query(
            "UPDATE region SET description = $2, parent_region_id = $3, extra = $4 WHERE id = $1",
        )
        .bind(&r.id)
        .bind(&r.description)
        .bind(&r.parent_region_id)
        .bind(extra_json(&r.extra))
        .execute(tx.conn())
        .await
        .ctx("updating a region")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the given regions, in the order given (children before parents),
    /// in one transaction. Refuses with `Ok(false)`, deleting nothing, when any
    /// endpoint is in one of them: the check runs inside the transaction.
    pub async fn delete_regions(&self, ids: &[String]) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting regions").await?;
        for id in ids {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM endpoint WHERE region_id = $1")
                .bind(id)
                .fetch_one(tx.conn())
                .await
                .ctx("counting a region's endpoints")?;
            if int(&row, "n")? > 0 {
                return Ok(false);
            }
        }
        for id in ids {
            sqlx::query("DELETE FROM policy_association WHERE region_id = $1")
                .bind(id)
                .execute(tx.conn())
                .await
                .ctx("deleting a region's policy associations")?;
            sqlx::query("DELETE FROM region WHERE id = $1")
                .bind(id)
                .execute(tx.conn())
                .await
                .ctx("deleting a region")?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn get_service(&self, id: &str) -> StoreResult<Option<Service>> {
        sqlx::query(&format!("SELECT {SERVICE_COLS} FROM service WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a service")?
            .as_ref()
            .map(service_from)
            .transpose()
    }

    pub async fn list_services(&self) -> StoreResult<Vec<Service>> {
        sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM service ORDER BY type, name, id"
        ))
        .fetch_all(self.reader())
        .await
        .ctx("listing services")?
        .iter()
        .map(service_from)
        .collect()
    }

    pub async fn create_service(&self, s: &Service) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a service").await?;
        sqlx::query(
            "INSERT INTO service (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.service_type)
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.enabled)
        .bind(extra_json(&s.extra))
        .execute(tx.conn())
        .await
        .ctx("creating a service")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_service(&self, s: &Service) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a service").await?;
        let done = sqlx::query(
            "UPDATE service SET type = $2, name = $3, description = $4, enabled = $5, extra = $6 WHERE id = $1",
        )
        .bind(&s.id)
        .bind(&s.service_type)
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.enabled)
        .bind(extra_json(&s.extra))
        .execute(tx.conn())
        .await
        .ctx("updating a service")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a service with its endpoints (and, by cascade, their project
    /// associations, and the policy associations naming either) in one transaction, as Keystone's SQL driver does.
    pub async fn delete_service(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a service").await?;
        sqlx::query(
            "DELETE FROM project_endpoint WHERE endpoint_id IN (SELECT id FROM endpoint WHERE service_id = $1)",
        )
        .bind(id)
        .execute(tx.conn())
        .await
        .ctx("deleting a service's endpoint associations")?;
        sqlx::query(
            "DELETE FROM policy_association WHERE service_id = $1 OR endpoint_id IN (SELECT id FROM endpoint WHERE service_id = $1)",
        )
        .bind(id)
        .execute(tx.conn())
        .await
        .ctx("deleting a service's policy associations")?;
        sqlx::query("DELETE FROM endpoint WHERE service_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a service's endpoints")?;
        let done = sqlx::query("DELETE FROM service WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a service")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn get_endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>> {
        sqlx::query(&format!(
            "SELECT {ENDPOINT_COLS} FROM endpoint WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading an endpoint")?
        .as_ref()
        .map(endpoint_from)
        .transpose()
    }

    pub async fn list_endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        sqlx::query(&format!(
            "SELECT {ENDPOINT_COLS} FROM endpoint ORDER BY service_id, id"
        ))
        .fetch_all(self.reader())
        .await
        .ctx("listing endpoints")?
        .iter()
        .map(endpoint_from)
        .collect()
    }

    pub async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let mut tx = self.begin_write("creating an endpoint").await?;
        sqlx::query(
            "INSERT INTO endpoint (id, service_id, interface, url, region_id, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.service_id)
        .bind(&e.interface)
        .bind(&e.url)
        .bind(&e.region_id)
        .bind(e.enabled)
        .bind(extra_json(&e.extra))
        .execute(tx.conn())
        .await
        .ctx("creating an endpoint")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_endpoint_url(&self, id: &str, url: &str) -> StoreResult<()> {
        let mut tx = self.begin_write("updating an endpoint").await?;
        sqlx::query("UPDATE endpoint SET url = $2 WHERE id = $1")
            .bind(id)
            .bind(url)
            .execute(tx.conn())
            .await
            .ctx("updating an endpoint")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating an endpoint").await?;
        let done = sqlx::query(
            "UPDATE endpoint SET service_id = $2, interface = $3, url = $4, region_id = $5, enabled = $6, extra = $7 WHERE id = $1",
        )
        .bind(&e.id)
        .bind(&e.service_id)
        .bind(&e.interface)
        .bind(&e.url)
        .bind(&e.region_id)
        .bind(e.enabled)
        .bind(extra_json(&e.extra))
        .execute(tx.conn())
        .await
        .ctx("updating an endpoint")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes an endpoint, its project and its policy associations in one transaction.
    pub async fn delete_endpoint(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting an endpoint").await?;
        sqlx::query("DELETE FROM project_endpoint WHERE endpoint_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an endpoint's project associations")?;
        sqlx::query("DELETE FROM policy_association WHERE endpoint_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an endpoint's policy associations")?;
        let done = sqlx::query("DELETE FROM endpoint WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an endpoint")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

/// OS-EP-FILTER: endpoint groups and their project associations.
impl Store {
    pub async fn create_endpoint_group(&self, g: &EndpointGroup) -> StoreResult<()> {
        let mut tx = self.begin_write("creating an endpoint group").await?;
        sqlx::query(
            "INSERT INTO endpoint_group (id, name, description, filters) VALUES ($1, $2, $3, $4)",
        )
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(extra_json(&g.filters))
        .execute(tx.conn())
        .await
        .ctx("creating an endpoint group")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_endpoint_group(&self, id: &str) -> StoreResult<Option<EndpointGroup>> {
        sqlx::query(&format!(
            "SELECT {ENDPOINT_GROUP_COLS} FROM endpoint_group WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading an endpoint group")?
        .as_ref()
        .map(endpoint_group_from)
        .transpose()
    }

    pub async fn list_endpoint_groups(&self) -> StoreResult<Vec<EndpointGroup>> {
        sqlx::query(&format!(
            "SELECT {ENDPOINT_GROUP_COLS} FROM endpoint_group ORDER BY name, id"
        ))
        .fetch_all(self.reader())
        .await
        .ctx("listing endpoint groups")?
        .iter()
        .map(endpoint_group_from)
        .collect()
    }

    pub async fn update_endpoint_group(&self, g: &EndpointGroup) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating an endpoint group").await?;
        let done = sqlx::query(
            "UPDATE endpoint_group SET name = $2, description = $3, filters = $4 WHERE id = $1",
        )
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(extra_json(&g.filters))
        .execute(tx.conn())
        .await
        .ctx("updating an endpoint group")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the group and its project associations in one transaction.
    pub async fn delete_endpoint_group(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting an endpoint group").await?;
        sqlx::query("DELETE FROM project_endpoint_group WHERE endpoint_group_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an endpoint group's project associations")?;
        let done = sqlx::query("DELETE FROM endpoint_group WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an endpoint group")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

impl ProjectLink {
    /// (table, column of the non-project side)
    fn parts(self) -> (&'static str, &'static str) {
        match self {
            ProjectLink::Endpoint => ("project_endpoint", "endpoint_id"),
            ProjectLink::EndpointGroup => ("project_endpoint_group", "endpoint_group_id"),
        }
    }
}

/// OS-EP-FILTER associations.
impl Store {
    /// A repeated association is a `Conflict`.
    pub async fn link_project(
        &self,
        link: ProjectLink,
        project_id: &str,
        other_id: &str,
    ) -> StoreResult<()> {
        let mut tx = self
            .begin_write("associating an endpoint or endpoint group with a project")
            .await?;
        let (table, column) = link.parts();
        sqlx::query(&format!(
            "INSERT INTO {table} ({column}, project_id) VALUES ($1, $2)"
        ))
        .bind(other_id)
        .bind(project_id)
        .execute(tx.conn())
        .await
        .ctx("associating an endpoint or endpoint group with a project")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn project_link_exists(
        &self,
        link: ProjectLink,
        project_id: &str,
        other_id: &str,
    ) -> StoreResult<bool> {
        let (table, column) = link.parts();
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1 AND project_id = $2"
        ))
        .bind(other_id)
        .bind(project_id)
        .fetch_one(self.reader())
        .await
        .ctx("checking an endpoint filter association")?;
        Ok(int(&row, "n")? > 0)
    }

    pub async fn unlink_project(
        &self,
        link: ProjectLink,
        project_id: &str,
        other_id: &str,
    ) -> StoreResult<bool> {
        let mut tx = self
            .begin_write("removing an endpoint filter association")
            .await?;
        let (table, column) = link.parts();
        let done = sqlx::query(&format!(
            "DELETE FROM {table} WHERE {column} = $1 AND project_id = $2"
        ))
        .bind(other_id)
        .bind(project_id)
        .execute(tx.conn())
        .await
        .ctx("removing an endpoint filter association")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Endpoint (or endpoint group) ids linked to the project.
    pub async fn linked_ids_for_project(
        &self,
        link: ProjectLink,
        project_id: &str,
    ) -> StoreResult<Vec<String>> {
        let (table, column) = link.parts();
        sqlx::query(&format!(
            "SELECT {column} AS id FROM {table} WHERE project_id = $1 ORDER BY {column}"
        ))
        .bind(project_id)
        .fetch_all(self.reader())
        .await
        .ctx("listing a project's endpoint filter associations")?
        .iter()
        .map(|r| text(r, "id"))
        .collect()
    }

    /// Project ids linked to the endpoint (or endpoint group).
    pub async fn projects_linked_to(
        &self,
        link: ProjectLink,
        other_id: &str,
    ) -> StoreResult<Vec<String>> {
        let (table, column) = link.parts();
        sqlx::query(&format!(
            "SELECT project_id FROM {table} WHERE {column} = $1 ORDER BY project_id"
        ))
        .bind(other_id)
        .fetch_all(self.reader())
        .await
        .ctx("listing the projects of an endpoint filter association")?
        .iter()
        .map(|r| text(r, "project_id"))
        .collect()
    }
}
