//! Domains and projects.

use sqlx::any::AnyRow;

use super::{boolean, json_extra, opt_text, text, DbContext, Store, StoreResult};

type Extra = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

fn domain_from(row: &AnyRow) -> StoreResult<Domain> {
    Ok(Domain {
        id: text(row, "id")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        enabled: boolean(row, "enabled")?,
        extra: json_extra(row)?,
    })
}

fn project_from(row: &AnyRow) -> StoreResult<Project> {
    Ok(Project {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: text(row, "domain_id")?,
        parent_id: opt_text(row, "parent_id")?,
        description: text(row, "description")?,
        enabled: boolean(row, "enabled")?,
        extra: json_extra(row)?,
    })
}

const DOMAIN_COLS: &str = "id, name, description, enabled, extra";
const PROJECT_COLS: &str = "id, name, domain_id, parent_id, description, enabled, extra";

impl Store {
    pub async fn get_domain(&self, id: &str) -> StoreResult<Option<Domain>> {
        sqlx::query(&format!("SELECT {DOMAIN_COLS} FROM domain WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a domain")?
            .as_ref()
            .map(domain_from)
            .transpose()
    }

    pub async fn get_domain_by_name(&self, name: &str) -> StoreResult<Option<Domain>> {
        sqlx::query(&format!("SELECT {DOMAIN_COLS} FROM domain WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a domain by name")?
            .as_ref()
            .map(domain_from)
            .transpose()
    }

    pub async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        sqlx::query(&format!("SELECT {DOMAIN_COLS} FROM domain ORDER BY name"))
            .fetch_all(self.reader())
            .await
            .ctx("listing domains")?
            .iter()
            .map(domain_from)
            .collect()
    }

    pub async fn create_domain(&self, d: &Domain) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO domain (id, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&d.id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(d.enabled)
        .bind(serde_json::Value::Object(d.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("creating a domain")?;
        self.changed().await?;
        Ok(())
    }

    pub async fn update_domain(&self, d: &Domain) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE domain SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
        )
        .bind(&d.id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(d.enabled)
        .bind(serde_json::Value::Object(d.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("updating a domain")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn get_project(&self, id: &str) -> StoreResult<Option<Project>> {
        sqlx::query(&format!("SELECT {PROJECT_COLS} FROM project WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a project")?
            .as_ref()
            .map(project_from)
            .transpose()
    }

    pub async fn get_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> StoreResult<Option<Project>> {
        sqlx::query(&format!(
            "SELECT {PROJECT_COLS} FROM project WHERE domain_id = $1 AND name = $2"
        ))
        .bind(domain_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a project by name")?
        .as_ref()
        .map(project_from)
        .transpose()
    }

    pub async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        sqlx::query(&format!("SELECT {PROJECT_COLS} FROM project ORDER BY name"))
            .fetch_all(self.reader())
            .await
            .ctx("listing projects")?
            .iter()
            .map(project_from)
            .collect()
    }

    pub async fn list_projects_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Project>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.get_project(id).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    pub async fn create_project(&self, p: &Project) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO project (id, name, domain_id, parent_id, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.domain_id)
        .bind(&p.parent_id)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(serde_json::Value::Object(p.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("creating a project")?;
        self.changed().await?;
        Ok(())
    }

    pub async fn update_project(&self, p: &Project) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE project SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(serde_json::Value::Object(p.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("updating a project")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the project and its assignments in one transaction.
    pub async fn delete_project(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.ctx("deleting a project")?;
        sqlx::query("DELETE FROM assignment WHERE target_id = $1 AND type IN ('UserProject', 'GroupProject')")
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a project's assignments")?;
        let done = sqlx::query("DELETE FROM project WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a project")?;
        tx.commit().await.ctx("deleting a project")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }
}

impl Store {
    /// Deletes a domain and everything owned by it (projects, users, groups, its
    /// domain-specific roles, and every assignment on or by them) in one transaction.
    pub async fn delete_domain_cascade(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.ctx("deleting a domain")?;
        let statements = [
            "DELETE FROM assignment WHERE target_id IN (SELECT id FROM project WHERE domain_id = $1)",
            "DELETE FROM assignment WHERE target_id = $1 AND type IN ('UserDomain', 'GroupDomain')",
            "DELETE FROM assignment WHERE actor_id IN (SELECT id FROM users WHERE domain_id = $1)",
            "DELETE FROM assignment WHERE actor_id IN (SELECT id FROM user_group WHERE domain_id = $1)",
            "DELETE FROM assignment WHERE role_id IN (SELECT id FROM role WHERE domain_id = $1)",
            "DELETE FROM group_membership WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
            "DELETE FROM group_membership WHERE group_id IN (SELECT id FROM user_group WHERE domain_id = $1)",
            "DELETE FROM project_tag WHERE project_id IN (SELECT id FROM project WHERE domain_id = $1)",
            "DELETE FROM implied_role WHERE prior_role_id IN (SELECT id FROM role WHERE domain_id = $1) OR implied_role_id IN (SELECT id FROM role WHERE domain_id = $1)",
            "DELETE FROM role WHERE domain_id = $1",
            "DELETE FROM users WHERE domain_id = $1",
            "DELETE FROM user_group WHERE domain_id = $1",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .ctx("deleting a domain's contents")?;
        }
        // Children before parents: repeatedly delete leaf projects.
        loop {
            let done = sqlx::query(
                "DELETE FROM project WHERE domain_id = $1 AND id NOT IN (SELECT parent_id FROM project WHERE parent_id IS NOT NULL)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a domain's projects")?;
            if done.rows_affected() == 0 {
                break;
            }
        }
        let done = sqlx::query("DELETE FROM domain WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a domain")?;
        tx.commit().await.ctx("deleting a domain")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }
}
