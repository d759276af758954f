//! Domains and projects.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::select::{Bind, Select};
use super::{
    boolean, json_extra, opt_text, placeholders, text, DbContext, Store, StoreError, StoreResult,
    IN_CHUNK,
};
use crate::model::*;

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

    /// One page of domains in id order (for `GET /v3/projects?is_domain=true`),
    /// read with one row more than the limit.
    pub async fn list_domains_page(
        &self,
        name: Option<&str>,
        enabled: Option<bool>,
        page: &PageRequest,
    ) -> StoreResult<Vec<Domain>> {
        let mut c = Select::new(format!("SELECT {DOMAIN_COLS} FROM domain"), self.backend());
        c.eq_opt_text("name", &name.map(str::to_string));
        if let Some(e) = enabled {
            c.eq("enabled", Bind::Bool(e));
        }
        c.page("id", page);
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing domains")?
            .iter()
            .map(domain_from)
            .collect()
    }

    pub async fn create_domain(&self, d: &Domain) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a domain").await?;
        sqlx::query(
            "INSERT INTO domain (id, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&d.id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(d.enabled)
        .bind(serde_json::Value::Object(d.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("creating a domain")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_domain(&self, d: &Domain) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a domain").await?;
        let done = sqlx::query(
            "UPDATE domain SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
        )
        .bind(&d.id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(d.enabled)
        .bind(serde_json::Value::Object(d.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("updating a domain")?;
        tx.commit().await?;
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

    /// The projects among `ids` that exist, in the order of `ids`.
    pub async fn list_projects_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Project>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT {PROJECT_COLS} FROM project WHERE id IN ({})",
                placeholders(0, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(self.reader()).await.ctx("reading projects")? {
                let p = project_from(&row)?;
                found.insert(p.id.clone(), p);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// (project_id, tag) for the projects among `ids`, tags sorted by name.
    pub async fn list_tags_of_projects(
        &self,
        ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT project_id, name FROM project_tag WHERE project_id IN ({}) ORDER BY project_id, name",
                placeholders(0, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q
                .fetch_all(self.reader())
                .await
                .ctx("listing project tags")?
            {
                out.push((text(&row, "project_id")?, text(&row, "name")?));
            }
        }
        Ok(out)
    }

    pub async fn create_project(&self, p: &Project) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a project").await?;
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
        .execute(tx.conn())
        .await
        .ctx("creating a project")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_project(&self, p: &Project) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a project").await?;
        let done = sqlx::query(
            "UPDATE project SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(serde_json::Value::Object(p.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("updating a project")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a leaf project with its assignments and tags in one transaction.
    /// The leaf check is part of the DELETE itself, so a child created
    /// concurrently can never be orphaned (nor trip the parent_id foreign key).
    pub async fn delete_project(&self, id: &str) -> StoreResult<ProjectDeletion> {
        let mut tx = self.begin_write("deleting a project").await?;
        let has_children = sqlx::query("SELECT id FROM project WHERE parent_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .ctx("checking a project's children")?
            .is_some();
        if has_children {
            return Ok(ProjectDeletion::HasChildren);
        }
        sqlx::query("DELETE FROM assignment WHERE target_id = $1 AND type IN ('UserProject', 'GroupProject')")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a project's assignments")?;
        sqlx::query("DELETE FROM project_tag WHERE project_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a project's tags")?;
        // Keystone's credential_api.delete_credentials_for_project callback.
        sqlx::query("DELETE FROM credential WHERE project_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a project's credentials")?;
        // Keystone's trust_api.delete_trusts_for_project callback.
        sqlx::query(
            "DELETE FROM trust_role WHERE trust_id IN (SELECT id FROM trust WHERE project_id = $1)",
        )
        .bind(id)
        .execute(tx.conn())
        .await
        .ctx("deleting a project's trust roles")?;
        sqlx::query("DELETE FROM trust WHERE project_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a project's trusts")?;
        // Keystone's unified_limit_api.delete_limits_for_project callback.
        sqlx::query("DELETE FROM unified_limit WHERE project_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a project's limits")?;
        let done = sqlx::query(
            "DELETE FROM project WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM project AS child WHERE child.parent_id = $1)",
        )
        .bind(id)
        .execute(tx.conn())
        .await
        .ctx("deleting a project")?;
        if done.rows_affected() == 0 {
            // Either gone already or a child appeared since the check: undo everything.
            drop(tx);
            return Ok(match self.get_project(id).await? {
                None => ProjectDeletion::NotFound,
                Some(_) => ProjectDeletion::HasChildren,
            });
        }
        tx.commit().await?;
        Ok(ProjectDeletion::Deleted)
    }

    /// Projects matching the filters, in id order (Keystone's paginated query); one
    /// page read with one row more than the limit (`Page::from_overfetch`).
    pub async fn list_projects_filtered(
        &self,
        f: &ProjectFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<Project>> {
        let mut c = Select::new(
            format!("SELECT {PROJECT_COLS} FROM project"),
            self.backend(),
        );
        c.eq_opt_text("name", &f.name)
            .eq_opt_text("domain_id", &f.domain_id)
            .eq_opt_text("domain_id", &f.within_domain)
            // A root project's parent is its domain, as Keystone stores it.
            .eq_opt_text("COALESCE(parent_id, domain_id)", &f.parent_id);
        if let Some(e) = f.enabled {
            c.eq("enabled", Bind::Bool(e));
        }
        let has =
            "EXISTS (SELECT 1 FROM project_tag t WHERE t.project_id = project.id AND t.name = {})";
        if let Some(tags) = &f.tags.all {
            for tag in tags {
                c.and(has, vec![Bind::Text(tag.clone())]);
            }
        }
        if let Some(tags) = &f.tags.not_all {
            let all = vec![has; tags.len()].join(" AND ");
            let binds = tags.iter().map(|t| Bind::Text(t.clone())).collect();
            c.and(&format!("NOT ({all})"), binds);
        }
        if let Some(tags) = &f.tags.any {
            let any = vec![has; tags.len()].join(" OR ");
            let binds = tags.iter().map(|t| Bind::Text(t.clone())).collect();
            c.and(&format!("({any})"), binds);
        }
        if let Some(tags) = &f.tags.not_any {
            let any = vec![has; tags.len()].join(" OR ");
            let binds = tags.iter().map(|t| Bind::Text(t.clone())).collect();
            c.and(&format!("NOT ({any})"), binds);
        }
        c.page("id", page);
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing projects")?
            .iter()
            .map(project_from)
            .collect()
    }

    pub async fn list_child_projects(&self, parent_id: &str) -> StoreResult<Vec<Project>> {
        sqlx::query(&format!(
            "SELECT {PROJECT_COLS} FROM project WHERE parent_id = $1 ORDER BY id"
        ))
        .bind(parent_id)
        .fetch_all(self.reader())
        .await
        .ctx("listing a project's children")?
        .iter()
        .map(project_from)
        .collect()
    }

    /// A project's tags, sorted by name (the primary key order Keystone's
    /// MySQL and SQLite backends return them in).
    pub async fn list_project_tags(&self, project_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query("SELECT name FROM project_tag WHERE project_id = $1 ORDER BY name")
            .bind(project_id)
            .fetch_all(self.reader())
            .await
            .ctx("listing a project's tags")?
            .iter()
            .map(|r| text(r, "name"))
            .collect()
    }

    /// Every (project_id, tag) pair, for rendering and filtering project lists.
    pub async fn list_all_project_tags(&self) -> StoreResult<Vec<(String, String)>> {
        sqlx::query("SELECT project_id, name FROM project_tag ORDER BY project_id, name")
            .fetch_all(self.reader())
            .await
            .ctx("listing project tags")?
            .iter()
            .map(|r| Ok((text(r, "project_id")?, text(r, "name")?)))
            .collect()
    }

    /// Inserts a project and its tags in one transaction.
    pub async fn create_project_with_tags(&self, p: &Project, tags: &[String]) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a project").await?;
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
        .execute(tx.conn())
        .await
        .ctx("creating a project")?;
        insert_tags(tx.conn(), &p.id, tags).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates the mutable columns and, when given, replaces the tags, in one
    /// transaction. False when the project does not exist.
    pub async fn update_project_with_tags(
        &self,
        p: &Project,
        tags: Option<&[String]>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a project").await?;
        let done = sqlx::query(
            "UPDATE project SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(serde_json::Value::Object(p.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("updating a project")?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Ok(false);
        }
        if let Some(tags) = tags {
            replace_tags(tx.conn(), &p.id, tags).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces every tag of an existing project. False when the project does not exist.
    pub async fn set_project_tags(&self, project_id: &str, tags: &[String]) -> StoreResult<bool> {
        let mut tx = self.begin_write("replacing project tags").await?;
        let exists = sqlx::query("SELECT id FROM project WHERE id = $1")
            .bind(project_id)
            .fetch_optional(tx.conn())
            .await
            .ctx("replacing project tags")?
            .is_some();
        if !exists {
            drop(tx);
            return Ok(false);
        }
        replace_tags(tx.conn(), project_id, tags).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds one tag unless it is already there or the project holds `max` tags;
    /// the count is checked by the INSERT itself so concurrent adds cannot overshoot.
    pub async fn add_project_tag(
        &self,
        project_id: &str,
        tag: &str,
        max: usize,
    ) -> StoreResult<TagAddition> {
        let mut tx = self.begin_write("adding a project tag").await?;
        let exists =
            sqlx::query("SELECT name FROM project_tag WHERE project_id = $1 AND name = $2")
                .bind(project_id)
                .bind(tag)
                .fetch_optional(tx.conn())
                .await
                .ctx("adding a project tag")?
                .is_some();
        if exists {
            drop(tx);
            return Ok(TagAddition::AlreadyPresent);
        }
        let done = sqlx::query(
            "INSERT INTO project_tag (project_id, name) SELECT $1, $2 WHERE (SELECT COUNT(*) FROM project_tag WHERE project_id = $1) < $3",
        )
        .bind(project_id)
        .bind(tag)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(tx.conn())
        .await;
        let done = match done.ctx("adding a project tag") {
            Ok(done) => done,
            // A concurrent request added the same tag first.
            Err(StoreError::Conflict { .. }) => return Ok(TagAddition::AlreadyPresent),
            Err(e) => return Err(e),
        };
        if done.rows_affected() == 0 {
            return Ok(TagAddition::Full);
        }
        tx.commit().await?;
        Ok(TagAddition::Added)
    }

    /// Removes one tag; false when the project did not have it.
    pub async fn remove_project_tag(&self, project_id: &str, tag: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("removing a project tag").await?;
        let done = sqlx::query("DELETE FROM project_tag WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(tag)
            .execute(tx.conn())
            .await
            .ctx("removing a project tag")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn insert_tags(
    conn: &mut AnyConnection,
    project_id: &str,
    tags: &[String],
) -> StoreResult<()> {
    for tag in tags {
        sqlx::query("INSERT INTO project_tag (project_id, name) VALUES ($1, $2)")
            .bind(project_id)
            .bind(tag)
            .execute(&mut *conn)
            .await
            .ctx("storing a project tag")?;
    }
    Ok(())
}

async fn replace_tags(
    conn: &mut AnyConnection,
    project_id: &str,
    tags: &[String],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM project_tag WHERE project_id = $1")
        .bind(project_id)
        .execute(&mut *conn)
        .await
        .ctx("replacing project tags")?;
    insert_tags(conn, project_id, tags).await
}

impl Store {
    /// Deletes a domain and everything owned by it (projects, users, groups, its
    /// domain-specific roles, every assignment on or by them, its domain configuration) in
    /// one transaction.
    pub async fn delete_domain_cascade(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a domain").await?;
        let statements = [
            "DELETE FROM assignment WHERE target_id IN (SELECT id FROM project WHERE domain_id = $1)",
            "DELETE FROM assignment WHERE target_id = $1 AND type IN ('UserDomain', 'GroupDomain')",
            "DELETE FROM assignment WHERE actor_id IN (SELECT id FROM users WHERE domain_id = $1)",
            "DELETE FROM assignment WHERE actor_id IN (SELECT id FROM user_group WHERE domain_id = $1)",
            "DELETE FROM assignment WHERE role_id IN (SELECT id FROM role WHERE domain_id = $1)",
            "DELETE FROM group_membership WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
            "DELETE FROM group_membership WHERE group_id IN (SELECT id FROM user_group WHERE domain_id = $1)",
            "DELETE FROM project_tag WHERE project_id IN (SELECT id FROM project WHERE domain_id = $1)",
            "DELETE FROM credential WHERE project_id IN (SELECT id FROM project WHERE domain_id = $1) OR user_id IN (SELECT id FROM users WHERE domain_id = $1)",
            "DELETE FROM unified_limit WHERE domain_id = $1 OR project_id IN (SELECT id FROM project WHERE domain_id = $1)",
            "DELETE FROM implied_role WHERE prior_role_id IN (SELECT id FROM role WHERE domain_id = $1) OR implied_role_id IN (SELECT id FROM role WHERE domain_id = $1)",
            "DELETE FROM role WHERE domain_id = $1",
            "DELETE FROM users WHERE domain_id = $1",
            "DELETE FROM user_group WHERE domain_id = $1",
            "DELETE FROM whitelisted_config WHERE domain_id = $1",
            "DELETE FROM sensitive_config WHERE domain_id = $1",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .ctx("deleting a domain's contents")?;
        }
        // Children before parents: repeatedly delete leaf projects.
        loop {
            let done = sqlx::query(
                "DELETE FROM project WHERE domain_id = $1 AND id NOT IN (SELECT parent_id FROM project WHERE parent_id IS NOT NULL)",
            )
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a domain's projects")?;
            if done.rows_affected() == 0 {
                break;
            }
        }
        let done = sqlx::query("DELETE FROM domain WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a domain")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
