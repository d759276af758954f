//! Roles, implied roles and role assignments.

use sqlx::any::AnyRow;

use super::{json_extra, text, DbContext, Store, StoreError, StoreResult};

/// Keystone's marker for a global (not domain-specific) role.
pub const GLOBAL_ROLE_DOMAIN: &str = "<<null>>";

/// Keystone's target id for system assignments.
pub const SYSTEM_TARGET: &str = "all";

#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// None for global roles.
    pub domain_id: Option<String>,
    pub description: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What an assignment grants a role on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Project,
    Domain,
    System,
}

/// Who holds an assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    User,
    Group,
}

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub actor: ActorKind,
    pub actor_id: String,
    pub target: TargetKind,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
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
        sqlx::query(
            "INSERT INTO role (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(r.domain_id.as_deref().unwrap_or(GLOBAL_ROLE_DOMAIN))
        .bind(&r.description)
        .bind(serde_json::Value::Object(r.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("creating a role")?;
        self.changed().await?;
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

    /// Idempotent: an existing rule is left as it is.
    pub async fn create_implied_role(&self, prior: &str, implied: &str) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES ($1, $2)",
        )
        .bind(prior)
        .bind(implied)
        .execute(self.writer())
        .await
        .ctx("creating an implied role");
        match result {
            Ok(_) | Err(StoreError::Conflict { .. }) => self.changed().await,
            Err(e) => Err(e),
        }
    }

    /// Idempotent: granting an existing assignment succeeds.
    pub async fn add_assignment(&self, a: &Assignment) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(assignment_type(a.actor, a.target))
        .bind(&a.actor_id)
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(a.inherited)
        .execute(self.writer())
        .await
        .ctx("granting a role");
        match result {
            Ok(_) | Err(StoreError::Conflict { .. }) => self.changed().await,
            Err(e) => Err(e),
        }
    }

    pub async fn remove_assignment(&self, a: &Assignment) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM assignment WHERE type = $1 AND actor_id = $2 AND target_id = $3 AND role_id = $4 AND inherited = $5",
        )
        .bind(assignment_type(a.actor, a.target))
        .bind(&a.actor_id)
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(a.inherited)
        .execute(self.writer())
        .await
        .ctx("revoking a role")?;
        self.changed().await?;
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
