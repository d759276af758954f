//! Roles, implied roles and role assignments.

use sqlx::any::AnyRow;

use super::{boolean, json_extra, placeholders, text, DbContext, Store, StoreError, StoreResult};
use crate::model::*;

/// Keystone's marker for a global (not domain-specific) role.
pub const GLOBAL_ROLE_DOMAIN: &str = "<<null>>";

/// Keystone's `assignment.type` values.
pub fn assignment_type(actor: ActorKind, target: TargetKind) -> &'static str {
    match (actor, target) {
        (ActorKind::User, TargetKind::Project) => "UserProject",
        (ActorKind::Group, TargetKind::Project) => "GroupProject",
        (ActorKind::User, TargetKind::Domain) => "UserDomain",
        (ActorKind::Group, TargetKind::Domain) => "GroupDomain",
        (ActorKind::User, TargetKind::System) => "UserSystem",
        (ActorKind::Group, TargetKind::System) => "GroupSystem",
    }
}

/// The (actor, target) pair an `assignment.type` value stands for.
pub fn parse_assignment_type(t: &str) -> Option<(ActorKind, TargetKind)> {
    Some(match t {
        "UserProject" => (ActorKind::User, TargetKind::Project),
        "GroupProject" => (ActorKind::Group, TargetKind::Project),
        "UserDomain" => (ActorKind::User, TargetKind::Domain),
        "GroupDomain" => (ActorKind::Group, TargetKind::Domain),
        "UserSystem" => (ActorKind::User, TargetKind::System),
        "GroupSystem" => (ActorKind::Group, TargetKind::System),
        _ => return None,
    })
}

fn assignment_from(row: &AnyRow) -> StoreResult<Assignment> {
    let kind = text(row, "type")?;
    let (actor, target) = parse_assignment_type(&kind).ok_or_else(|| StoreError::Corrupt {
        context: "reading an assignment",
        detail: format!("unknown assignment type {kind:?}"),
    })?;
    Ok(Assignment {
        actor,
        actor_id: text(row, "actor_id")?,
        target,
        target_id: text(row, "target_id")?,
        role_id: text(row, "role_id")?,
        inherited: boolean(row, "inherited")?,
    })
}

fn role_from(row: &AnyRow) -> StoreResult<Role> {
    let domain_id = text(row, "domain_id")?;
    Ok(Role {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: (domain_id != GLOBAL_ROLE_DOMAIN).then_some(domain_id),
        description: text(row, "description")?,
        extra: json_extra(row)?,
    })
}

impl Store {
    pub async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        sqlx::query("SELECT id, name, domain_id, description, extra FROM role ORDER BY name")
            .fetch_all(self.reader())
            .await
            .ctx("listing roles")?
            .iter()
            .map(role_from)
            .collect()
    }

    pub async fn get_role(&self, id: &str) -> StoreResult<Option<Role>> {
        sqlx::query("SELECT id, name, domain_id, description, extra FROM role WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a role")?
            .as_ref()
            .map(role_from)
            .transpose()
    }

    pub async fn get_global_role_by_name(&self, name: &str) -> StoreResult<Option<Role>> {
        sqlx::query(
            "SELECT id, name, domain_id, description, extra FROM role WHERE name = $1 AND domain_id = $2",
        )
        .bind(name)
        .bind(GLOBAL_ROLE_DOMAIN)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a role by name")?
        .as_ref()
        .map(role_from)
        .transpose()
    }

    pub async fn create_role(&self, r: &Role) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a role").await?;
        sqlx::query(
            "INSERT INTO role (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(r.domain_id.as_deref().unwrap_or(GLOBAL_ROLE_DOMAIN))
        .bind(&r.description)
        .bind(serde_json::Value::Object(r.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("creating a role")?;
        tx.commit().await?;
        Ok(())
    }

    /// All (prior, implied) pairs; the set is small and the caller takes the closure.
    pub async fn list_implied_roles(&self) -> StoreResult<Vec<(String, String)>> {
        sqlx::query("SELECT prior_role_id, implied_role_id FROM implied_role")
            .fetch_all(self.reader())
            .await
            .ctx("listing implied roles")?
            .iter()
            .map(|r| Ok((text(r, "prior_role_id")?, text(r, "implied_role_id")?)))
            .collect()
    }

    /// Idempotent: an existing rule is left as it is (`ON CONFLICT DO NOTHING`: on
    /// PostgreSQL a failed INSERT would abort the whole transaction).
    pub async fn create_implied_role(&self, prior: &str, implied: &str) -> StoreResult<()> {
        let mut tx = self.begin_write("creating an implied role").await?;
        let result = sqlx::query(
            "INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(prior)
        .bind(implied)
        .execute(tx.conn())
        .await
        .ctx("creating an implied role");
        match result {
            Ok(_) | Err(StoreError::Conflict { .. }) => tx.commit().await,
            Err(e) => Err(e),
        }
    }

    /// Idempotent: granting an existing assignment succeeds.
    pub async fn add_assignment(&self, a: &Assignment) -> StoreResult<()> {
        let mut tx = self.begin_write("granting a role").await?;
        let result = sqlx::query(
            "INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(assignment_type(a.actor, a.target))
        .bind(&a.actor_id)
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(a.inherited)
        .execute(tx.conn())
        .await
        .ctx("granting a role");
        match result {
            Ok(_) | Err(StoreError::Conflict { .. }) => tx.commit().await,
            Err(e) => Err(e),
        }
    }

    pub async fn remove_assignment(&self, a: &Assignment) -> StoreResult<bool> {
        let mut tx = self.begin_write("revoking a role").await?;
        let done = sqlx::query(
            "DELETE FROM assignment WHERE type = $1 AND actor_id = $2 AND target_id = $3 AND role_id = $4 AND inherited = $5",
        )
        .bind(assignment_type(a.actor, a.target))
        .bind(&a.actor_id)
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(a.inherited)
        .execute(tx.conn())
        .await
        .ctx("revoking a role")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Role ids granted to the user on the target directly or through a group,
    /// before implied-role expansion. `inherited` selects OS-INHERIT assignments.
    pub async fn list_user_role_ids_on(
        &self,
        user_id: &str,
        target: TargetKind,
        target_id: &str,
        inherited: bool,
    ) -> StoreResult<Vec<String>> {
        sqlx::query(
            "SELECT DISTINCT role_id FROM assignment WHERE target_id = $1 AND inherited = $2 AND \
             ((type = $3 AND actor_id = $4) OR \
              (type = $5 AND actor_id IN (SELECT group_id FROM group_membership WHERE user_id = $4)))",
        )
        .bind(target_id)
        .bind(inherited)
        .bind(assignment_type(ActorKind::User, target))
        .bind(user_id)
        .bind(assignment_type(ActorKind::Group, target))
        .fetch_all(self.reader())
        .await
        .ctx("listing a user's roles")?
        .iter()
        .map(|r| text(r, "role_id"))
        .collect()
    }

    /// Ids of the projects (or domains) where the user holds any role directly or through a group.
    pub async fn list_target_ids_for_user(
        &self,
        user_id: &str,
        target: TargetKind,
    ) -> StoreResult<Vec<String>> {
        sqlx::query(
            "SELECT DISTINCT target_id FROM assignment WHERE inherited = $1 AND \
             ((type = $2 AND actor_id = $3) OR \
              (type = $4 AND actor_id IN (SELECT group_id FROM group_membership WHERE user_id = $3)))",
        )
        .bind(false)
        .bind(assignment_type(ActorKind::User, target))
        .bind(user_id)
        .bind(assignment_type(ActorKind::Group, target))
        .fetch_all(self.reader())
        .await
        .ctx("listing a user's assignment targets")?
        .iter()
        .map(|r| text(r, "target_id"))
        .collect()
    }
}

/// Every `$n` placeholder for `values`, starting after `offset` earlier ones.
impl Store {
    /// Writes name, description and extra (which carries `options`); the domain never changes.
    pub async fn update_role(&self, r: &Role) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a role").await?;
        let done =
            sqlx::query("UPDATE role SET name = $2, description = $3, extra = $4 WHERE id = $1")
                .bind(&r.id)
                .bind(&r.name)
                .bind(&r.description)
                .bind(serde_json::Value::Object(r.extra.clone()).to_string())
                .execute(tx.conn())
                .await
                .ctx("updating a role")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the role, every assignment of it and every inference rule naming it, in
    /// one transaction: nothing is left pointing at a role that no longer exists.
    pub async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a role").await?;
        for sql in [
            "DELETE FROM assignment WHERE role_id = $1",
            "DELETE FROM implied_role WHERE prior_role_id = $1 OR implied_role_id = $1",
            "DELETE FROM application_credential_role WHERE role_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .ctx("deleting a role's assignments and rules")?;
        }
        let done = sqlx::query("DELETE FROM role WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a role")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Strict insert for the API: an existing rule is a `Conflict` (Keystone answers 409).
    pub async fn insert_implied_role(&self, prior: &str, implied: &str) -> StoreResult<()> {
        let mut tx = self.begin_write("implied_role").await?;
        sqlx::query("INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES ($1, $2)")
            .bind(prior)
            .bind(implied)
            .execute(tx.conn())
            .await
            .ctx("implied_role")?;
        tx.commit().await
    }

    pub async fn delete_implied_role(&self, prior: &str, implied: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting an implied role").await?;
        let done = sqlx::query(
            "DELETE FROM implied_role WHERE prior_role_id = $1 AND implied_role_id = $2",
        )
        .bind(prior)
        .bind(implied)
        .execute(tx.conn())
        .await
        .ctx("deleting an implied role")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn implied_role_exists(&self, prior: &str, implied: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM implied_role WHERE prior_role_id = $1 AND implied_role_id = $2",
        )
        .bind(prior)
        .bind(implied)
        .fetch_one(self.reader())
        .await
        .ctx("reading an implied role")?;
        Ok(super::int(&row, "n")? > 0)
    }

    pub async fn has_assignment(&self, a: &Assignment) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM assignment WHERE type = $1 AND actor_id = $2 AND target_id = $3 AND role_id = $4 AND inherited = $5",
        )
        .bind(assignment_type(a.actor, a.target))
        .bind(&a.actor_id)
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(a.inherited)
        .fetch_one(self.reader())
        .await
        .ctx("checking a role assignment")?;
        Ok(super::int(&row, "n")? > 0)
    }

    /// Assignment rows matching every given filter, in a stable order.
    pub async fn list_assignments(&self, f: &AssignmentFilter) -> StoreResult<Vec<Assignment>> {
        let actors: Vec<ActorKind> = match f.actor {
            Some(a) => vec![a],
            None => vec![ActorKind::User, ActorKind::Group],
        };
        let targets = f
            .targets
            .clone()
            .unwrap_or_else(|| vec![TargetKind::Project, TargetKind::Domain, TargetKind::System]);
        let types: Vec<&'static str> = actors
            .iter()
            .flat_map(|a| targets.iter().map(move |t| assignment_type(*a, *t)))
            .collect();
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        let mut sql = format!(
            "SELECT type, actor_id, target_id, role_id, inherited FROM assignment WHERE type IN ({})",
            placeholders(0, types.len())
        );
        if let Some(role_id) = &f.role_id {
            binds.push(role_id.clone());
            sql.push_str(&format!(" AND role_id = ${}", binds.len()));
        }
        for (column, values) in [("actor_id", &f.actor_ids), ("target_id", &f.target_ids)] {
            if let Some(values) = values {
                if values.is_empty() {
                    return Ok(Vec::new());
                }
                sql.push_str(&format!(
                    " AND {column} IN ({})",
                    placeholders(binds.len(), values.len())
                ));
                binds.extend(values.iter().cloned());
            }
        }
        let inherited_at = binds.len() + 1;
        if f.inherited.is_some() {
            sql.push_str(&format!(" AND inherited = ${inherited_at}"));
        }
        sql.push_str(" ORDER BY type, actor_id, target_id, role_id, inherited");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        if let Some(inherited) = f.inherited {
            q = q.bind(inherited);
        }
        q.fetch_all(self.reader())
            .await
            .ctx("listing role assignments")?
            .iter()
            .map(assignment_from)
            .collect()
    }
}
