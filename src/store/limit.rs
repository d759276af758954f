//! Keystone's `registered_limit` and `limit` tables (here `unified_limit`: `limit` is
//! an SQL keyword). A limit stores only its registered limit's id; the service, region
//! and resource come from a join, as Keystone's hybrid properties do.

use sqlx::any::AnyRow;

use super::select::Select;
use super::{int, opt_text, text, Backend, DbContext, Store, StoreResult, WriteTx};
use crate::model::{Limit, LimitFilter, RegisteredLimit, RegisteredLimitPatch};

const REGISTERED_COLS: &str =
    "id, service_id, region_id, resource_name, default_limit, description";

const LIMIT_SELECT: &str = "SELECT l.id, l.registered_limit_id, l.project_id, l.domain_id, \
     l.resource_limit, l.description, r.service_id, r.region_id, r.resource_name \
     FROM unified_limit l JOIN registered_limit r ON r.id = l.registered_limit_id";

/// What a write to a registered limit found.
#[derive(Debug)]
pub enum RegisteredLimitWrite {
    Done(RegisteredLimit),
    NotFound,
    /// Limits refer to it: Keystone refuses to change or delete it.
    Referenced,
}

fn registered_from(row: &AnyRow) -> StoreResult<RegisteredLimit> {
    Ok(RegisteredLimit {
        id: text(row, "id")?,
        service_id: text(row, "service_id")?,
        region_id: opt_text(row, "region_id")?,
        resource_name: text(row, "resource_name")?,
        default_limit: int(row, "default_limit")?,
        description: opt_text(row, "description")?,
    })
}

fn limit_from(row: &AnyRow) -> StoreResult<Limit> {
    Ok(Limit {
        id: text(row, "id")?,
        registered_limit_id: text(row, "registered_limit_id")?,
        project_id: opt_text(row, "project_id")?,
        domain_id: opt_text(row, "domain_id")?,
        service_id: text(row, "service_id")?,
        region_id: opt_text(row, "region_id")?,
        resource_name: text(row, "resource_name")?,
        resource_limit: int(row, "resource_limit")?,
        description: opt_text(row, "description")?,
    })
}

/// The filter's conditions, on columns prefixed with `prefix` (`r.` in the join).
fn filtered(base: String, filter: &LimitFilter, prefix: &str, backend: Backend) -> Select {
    let mut c = Select::new(base, backend);
    c.eq_opt_text(&format!("{prefix}service_id"), &filter.service_id)
        .eq_opt_text(&format!("{prefix}resource_name"), &filter.resource_name);
    match &filter.region_id {
        Some(None) => {
            c.and(&format!("{prefix}region_id IS NULL"), Vec::new());
        }
        Some(region) => {
            c.eq_opt_text(&format!("{prefix}region_id"), region);
        }
        None => {}
    }
    c
}

impl Store {
    /// Ordered by id; every filter is an exact match.
    pub async fn list_registered_limits(
        &self,
        filter: &LimitFilter,
    ) -> StoreResult<Vec<RegisteredLimit>> {
        let mut c = filtered(
            format!("SELECT {REGISTERED_COLS} FROM registered_limit"),
            filter,
            "",
            self.backend(),
        );
        c.order_by("id");
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing registered limits")?
            .iter()
            .map(registered_from)
            .collect()
    }

    pub async fn get_registered_limit(&self, id: &str) -> StoreResult<Option<RegisteredLimit>> {
        sqlx::query(&format!(
            "SELECT {REGISTERED_COLS} FROM registered_limit WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a registered limit")?
        .as_ref()
        .map(registered_from)
        .transpose()
    }

    /// All or nothing: a duplicate (service, region, resource) is a `Conflict` and
    /// nothing is written.
    pub async fn insert_registered_limits(&self, new: &[RegisteredLimit]) -> StoreResult<()> {
        let mut tx = self.begin_write("creating registered limits").await?;
        for r in new {
            sqlx::query(
                "INSERT INTO registered_limit (id, service_id, region_id, resource_name, default_limit, description) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&r.id)
            .bind(&r.service_id)
            .bind(&r.region_id)
            .bind(&r.resource_name)
            .bind(r.default_limit)
            .bind(&r.description)
            .execute(tx.conn())
            .await
            .ctx("creating registered limits")?;
        }
        tx.commit().await
    }

    async fn registered_in_use(tx: &mut WriteTx<'_>, id: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT id FROM unified_limit WHERE registered_limit_id = $1 LIMIT 1")
                .bind(id)
                .fetch_optional(tx.conn())
                .await
                .ctx("checking a registered limit's limits")?
                .is_some(),
        )
    }

    /// Applies `patch` unless limits refer to the row; a duplicate is a `Conflict`.
    pub async fn update_registered_limit(
        &self,
        id: &str,
        patch: &RegisteredLimitPatch,
    ) -> StoreResult<RegisteredLimitWrite> {
        let mut tx = self.begin_write("updating a registered limit").await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {REGISTERED_COLS} FROM registered_limit WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .ctx("reading a registered limit")?
        else {
            return Ok(RegisteredLimitWrite::NotFound);
        };
        if Self::registered_in_use(&mut tx, id).await? {
            return Ok(RegisteredLimitWrite::Referenced);
        }
        let mut r = registered_from(&row)?;
        if let Some(v) = &patch.service_id {
            r.service_id = v.clone();
        }
        if let Some(v) = &patch.region_id {
            r.region_id = v.clone();
        }
        if let Some(v) = &patch.resource_name {
            r.resource_name = v.clone();
        }
        if let Some(v) = patch.default_limit {
            r.default_limit = v;
        }
        if let Some(v) = &patch.description {
            r.description = v.clone();
        }
        sqlx::query(
            "UPDATE registered_limit SET service_id = $2, region_id = $3, resource_name = $4, default_limit = $5, description = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&r.service_id)
        .bind(&r.region_id)
        .bind(&r.resource_name)
        .bind(r.default_limit)
        .bind(&r.description)
        .execute(tx.conn())
        .await
        .ctx("updating a registered limit")?;
        tx.commit().await?;
        Ok(RegisteredLimitWrite::Done(r))
    }

    pub async fn delete_registered_limit(&self, id: &str) -> StoreResult<RegisteredLimitWrite> {
        let mut tx = self.begin_write("deleting a registered limit").await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {REGISTERED_COLS} FROM registered_limit WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .ctx("reading a registered limit")?
        else {
            return Ok(RegisteredLimitWrite::NotFound);
        };
        if Self::registered_in_use(&mut tx, id).await? {
            return Ok(RegisteredLimitWrite::Referenced);
        }
        sqlx::query("DELETE FROM registered_limit WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a registered limit")?;
        tx.commit().await?;
        Ok(RegisteredLimitWrite::Done(registered_from(&row)?))
    }

    /// Ordered by id; every filter is an exact match (service, region and resource
    /// are the registered limit's).
    pub async fn list_limits(&self, filter: &LimitFilter) -> StoreResult<Vec<Limit>> {
        let mut c = filtered(LIMIT_SELECT.to_string(), filter, "r.", self.backend());
        c.eq_opt_text("l.project_id", &filter.project_id)
            .eq_opt_text("l.domain_id", &filter.domain_id)
            .order_by("l.id");
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing limits")?
            .iter()
            .map(limit_from)
            .collect()
    }

    pub async fn get_limit(&self, id: &str) -> StoreResult<Option<Limit>> {
        sqlx::query(&format!("{LIMIT_SELECT} WHERE l.id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a limit")?
            .as_ref()
            .map(limit_from)
            .transpose()
    }

    /// All or nothing, in one transaction: each limit is attached to the registered
    /// limit of its (service, region, resource). `Ok(None)`: one has none (nothing is
    /// written); a second limit for the same project or domain is a `Conflict`.
    pub async fn insert_limits(&self, new: &[Limit]) -> StoreResult<Option<Vec<Limit>>> {
        let mut tx = self.begin_write("creating limits").await?;
        let mut created = Vec::with_capacity(new.len());
        for l in new {
            let Some(row) = sqlx::query(
                "SELECT id FROM registered_limit WHERE service_id = $1 AND resource_name = $2 AND COALESCE(region_id, '') = COALESCE($3, '')",
            )
            .bind(&l.service_id)
            .bind(&l.resource_name)
            .bind(&l.region_id)
            .fetch_optional(tx.conn())
            .await
            .ctx("finding a limit's registered limit")?
            else {
                return Ok(None);
            };
            let registered_limit_id = text(&row, "id")?;
            sqlx::query(
                "INSERT INTO unified_limit (id, registered_limit_id, project_id, domain_id, resource_limit, description) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&l.id)
            .bind(&registered_limit_id)
            .bind(&l.project_id)
            .bind(&l.domain_id)
            .bind(l.resource_limit)
            .bind(&l.description)
            .execute(tx.conn())
            .await
            .ctx("creating limits")?;
            created.push(Limit {
                registered_limit_id,
                ..l.clone()
            });
        }
        tx.commit().await?;
        Ok(Some(created))
    }

    /// Sets the override and the description; `Ok(None)` when the limit is gone.
    pub async fn update_limit(
        &self,
        id: &str,
        resource_limit: Option<i64>,
        description: Option<Option<String>>,
    ) -> StoreResult<Option<Limit>> {
        let mut tx = self.begin_write("updating a limit").await?;
        let Some(row) = sqlx::query(&format!("{LIMIT_SELECT} WHERE l.id = $1"))
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .ctx("reading a limit")?
        else {
            return Ok(None);
        };
        let mut l = limit_from(&row)?;
        if let Some(v) = resource_limit {
            l.resource_limit = v;
        }
        if let Some(v) = description {
            l.description = v;
        }
        sqlx::query("UPDATE unified_limit SET resource_limit = $2, description = $3 WHERE id = $1")
            .bind(id)
            .bind(l.resource_limit)
            .bind(&l.description)
            .execute(tx.conn())
            .await
            .ctx("updating a limit")?;
        tx.commit().await?;
        Ok(Some(l))
    }

    pub async fn delete_limit(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a limit").await?;
        let done = sqlx::query("DELETE FROM unified_limit WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a limit")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Projects nested deeper than `max` below their domain, at most `max + 1` levels
    /// walked (what `strict_two_level` refuses at startup); `max` is 1 or more.
    pub async fn projects_deeper_than(&self, max: usize) -> StoreResult<Vec<String>> {
        let mut sql = String::from("SELECT p0.id FROM project p0");
        for i in 1..max.max(1) {
            sql.push_str(&format!(
                " JOIN project p{i} ON p{}.parent_id = p{i}.id",
                i - 1
            ));
        }
        sql.push_str(&format!(
            " WHERE p{}.parent_id IS NOT NULL ORDER BY p0.id",
            max.max(1) - 1
        ));
        sqlx::query(&sql)
            .fetch_all(self.reader())
            .await
            .ctx("checking the project hierarchy's depth")?
            .iter()
            .map(|row| text(row, "id"))
            .collect()
    }
}
