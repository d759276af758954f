//! Regions, services and endpoints.

use sqlx::any::AnyRow;

use super::{boolean, json_extra, opt_text, text, DbContext, Store, StoreError, StoreResult};

type Extra = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Extra,
}

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

impl Store {
    pub async fn get_region(&self, id: &str) -> StoreResult<Option<Region>> {
        sqlx::query("SELECT id, description, parent_region_id, extra FROM region WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a region")?
            .as_ref()
            .map(|r| {
                Ok(Region {
                    id: text(r, "id")?,
                    description: text(r, "description")?,
                    parent_region_id: opt_text(r, "parent_region_id")?,
                    extra: json_extra(r)?,
                })
            })
            .transpose()
    }

    /// Idempotent: an existing region is kept.
    pub async fn create_region(&self, r: &Region) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO region (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.id)
        .bind(&r.description)
        .bind(&r.parent_region_id)
        .bind(extra_json(&r.extra))
        .execute(self.writer())
        .await
        .ctx("creating a region");
        match result {
            Ok(_) | Err(StoreError::Conflict { .. }) => self.changed().await,
            Err(e) => Err(e),
        }
    }

    pub async fn list_services(&self) -> StoreResult<Vec<Service>> {
        sqlx::query(
            "SELECT id, type, name, description, enabled, extra FROM service ORDER BY type, name",
        )
        .fetch_all(self.reader())
        .await
        .ctx("listing services")?
        .iter()
        .map(service_from)
        .collect()
    }

    pub async fn create_service(&self, s: &Service) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO service (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.service_type)
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.enabled)
        .bind(extra_json(&s.extra))
        .execute(self.writer())
        .await
        .ctx("creating a service")?;
        self.changed().await?;
        Ok(())
    }

    pub async fn list_endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        sqlx::query(
            "SELECT id, service_id, interface, url, region_id, enabled, extra FROM endpoint ORDER BY service_id, id",
        )
        .fetch_all(self.reader())
        .await
        .ctx("listing endpoints")?
        .iter()
        .map(endpoint_from)
        .collect()
    }

    pub async fn create_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
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
        .execute(self.writer())
        .await
        .ctx("creating an endpoint")?;
        self.changed().await?;
        Ok(())
    }

    pub async fn update_endpoint_url(&self, id: &str, url: &str) -> StoreResult<()> {
        sqlx::query("UPDATE endpoint SET url = $2 WHERE id = $1")
            .bind(id)
            .bind(url)
            .execute(self.writer())
            .await
            .ctx("updating an endpoint")?;
        self.changed().await?;
        Ok(())
    }
}
