//! Roles and implied-role rules, with Keystone's rules and messages
//! (`keystone/assignment/core.py` RoleManager, `role_backends/sql.py`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{role_not_found, AssignmentService};
use crate::error::{Error, Result};
use crate::model::Role;
use crate::store::StoreError;

/// Where a role's resource options live: Keystone keeps them in `role_option` rows;
/// we keep them in the role's `extra` JSON under this key, which the API never
/// renders as a free-form attribute.
const OPTIONS_KEY: &str = "options";
const IMMUTABLE: &str = "immutable";

/// The role's resource options (`{"immutable": true}` or `{}`).
pub fn role_options(role: &Role) -> Map<String, Value> {
    match role.extra.get(OPTIONS_KEY) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

pub fn is_immutable(role: &Role) -> bool {
    role_options(role).get(IMMUTABLE) == Some(&Value::Bool(true))
}

/// Keystone's `check_immutable_update`: an immutable role accepts exactly one change,
/// `options.immutable` set to false or null (make it mutable first, then edit it).
pub fn check_immutable_update(original: &Role, patch: &Map<String, Value>) -> Result<()> {
    if !is_immutable(original) {
        return Ok(());
    }
    let unlocks = match patch.get(OPTIONS_KEY) {
        Some(Value::Object(o)) => {
            matches!(o.get(IMMUTABLE), Some(Value::Bool(false) | Value::Null))
        }
        _ => false,
    };
    if patch.len() > 1 || !unlocks {
        return Err(Error::ForbiddenAction(format!(
            "Unable to update immutable role resource: `{}. Set resource option \"immutable\" to false first.",
            original.id
        )));
    }
    Ok(())
}

/// Keystone's `handle_conflicts(conflict_type='role')` text.
fn duplicate_role(role: &Role, with_domain: bool) -> Error {
    let details = match (&role.domain_id, with_domain) {
        (Some(d), true) => format!(
            "Duplicate entry found with name {} at domain ID {d}",
            role.name
        ),
        _ => format!("Duplicate entry found with name {}", role.name),
    };
    Error::Conflict {
        what: format!("role - {details}."),
    }
}

impl AssignmentService {
    pub async fn get_role(&self, id: &str) -> Result<Role> {
        self.store
            .get_role(id)
            .await?
            .ok_or_else(|| role_not_found(id))
    }

    /// `GET /v3/roles`: without `domain_id` only global roles are listed (Keystone
    /// adds a `domain_id=None` filter), with it only that domain's roles.
    pub async fn list_roles(
        &self,
        name: Option<&str>,
        domain_id: Option<&str>,
    ) -> Result<Vec<Role>> {
        Ok(self
            .store
            .list_roles()
            .await?
            .into_iter()
            .filter(|r| r.domain_id.as_deref() == domain_id)
            .filter(|r| name.is_none_or(|n| r.name == n))
            .collect())
    }

    /// A domain-specific role must name an existing domain (Keystone does not check;
    /// we refuse to create a role no one could ever assign or delete with its domain).
    pub async fn create_role(&self, role: Role) -> Result<Role> {
        if let Some(d) = &role.domain_id {
            if self.store.get_domain(d).await?.is_none() {
                return Err(Error::not_found(format!("Could not find domain: {d}.")));
            }
        }
        self.store.create_role(&role).await.map_err(|e| match e {
            StoreError::Conflict { .. } => duplicate_role(&role, true),
            other => other.into(),
        })?;
        Ok(role)
    }

    /// Renaming keeps every assignment: they reference the id.
    pub async fn update_role(&self, role: Role) -> Result<Role> {
        let found = self.store.update_role(&role).await.map_err(|e| match e {
            StoreError::Conflict { .. } => duplicate_role(&role, false),
            other => other.into(),
        })?;
        if !found {
            return Err(role_not_found(&role.id));
        }
        Ok(role)
    }

    /// Deletes the role with its assignments and inference rules (one transaction).
    /// Tokens carrying it simply lose it at their next validation, or fail if it was
    /// their only role: roles are recomputed live, so no revocation event is needed.
    pub async fn delete_role(&self, id: &str) -> Result<()> {
        let role = self.get_role(id).await?;
        if is_immutable(&role) {
            return Err(Error::ForbiddenAction(format!(
                "Unable to delete immutable role resource: `{id}. Set resource option \"immutable\" to false first."
            )));
        }
        if !self.store.delete_role(id).await? {
            return Err(role_not_found(id));
        }
        Ok(())
    }

    /// Keystone's `create_implied_role`. Cycles are accepted, as in Keystone (its
    /// `test_circular_inferences`): every expansion of the rules terminates.
    pub async fn create_implied_role(
        &self,
        prior: &Role,
        implied: &Role,
        prohibited: &[String],
    ) -> Result<()> {
        // Both refusals are Keystone's InvalidImpliedRole, a security error whose
        // detail is hidden: the client always sees "<id> cannot be an implied roles."
        let invalid =
            || Error::ForbiddenAction(format!("{} cannot be an implied roles.", implied.id));
        if prohibited.contains(&implied.name) {
            return Err(invalid());
        }
        if prior.domain_id.is_none() && implied.domain_id.is_some() {
            tracing::debug!(prior = %prior.id, implied = %implied.id, "global role cannot imply a domain-specific role");
            return Err(invalid());
        }
        self.store
            .insert_implied_role(&prior.id, &implied.id)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => Error::Conflict {
                    what: "implied_role - Duplicate entry.".into(),
                },
                other => other.into(),
            })
    }

    /// Keystone's ImpliedRoleNotFound when the rule does not exist.
    pub async fn check_implied_role(&self, prior_id: &str, implied_id: &str) -> Result<()> {
        if self.store.implied_role_exists(prior_id, implied_id).await? {
            Ok(())
        } else {
            Err(implied_not_found(prior_id, implied_id))
        }
    }

    pub async fn delete_implied_role(&self, prior_id: &str, implied_id: &str) -> Result<()> {
        if self.store.delete_implied_role(prior_id, implied_id).await? {
            Ok(())
        } else {
            Err(implied_not_found(prior_id, implied_id))
        }
    }

    /// The roles `prior_id` directly implies.
    pub async fn list_implied_roles(&self, prior_id: &str) -> Result<Vec<Role>> {
        Ok(self
            .list_role_inferences()
            .await?
            .into_iter()
            .find(|(p, _)| p.id == prior_id)
            .map(|(_, implied)| implied)
            .unwrap_or_default())
    }

    /// Every rule, grouped by prior role.
    pub async fn list_role_inferences(&self) -> Result<Vec<(Role, Vec<Role>)>> {
        let roles: BTreeMap<String, Role> = self
            .store
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut rules: Vec<(Role, Vec<Role>)> = Vec::new();
        for (prior, implied) in self.store.list_implied_roles().await? {
            let (Some(p), Some(i)) = (roles.get(&prior), roles.get(&implied)) else {
                continue;
            };
            match rules.iter_mut().find(|(r, _)| r.id == prior) {
                Some((_, list)) => list.push(i.clone()),
                None => rules.push((p.clone(), vec![i.clone()])),
            }
        }
        Ok(rules)
    }
}

fn implied_not_found(prior_id: &str, implied_id: &str) -> Error {
    Error::not_found(format!("{prior_id} does not imply {implied_id}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(options: Value) -> Role {
        let mut extra = Map::new();
        extra.insert(OPTIONS_KEY.into(), options);
        Role {
            id: "r1".into(),
            name: "r".into(),
            domain_id: None,
            description: String::new(),
            extra,
        }
    }

    fn patch(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn immutable_roles_accept_only_the_unlock() {
        let locked = role(json!({"immutable": true}));
        assert!(is_immutable(&locked));
        assert!(
            check_immutable_update(&locked, &patch(json!({"options": {"immutable": false}})))
                .is_ok()
        );
        assert!(
            check_immutable_update(&locked, &patch(json!({"options": {"immutable": null}})))
                .is_ok()
        );
        let err = check_immutable_update(&locked, &patch(json!({"name": "x"})));
        assert!(
            matches!(err, Err(Error::ForbiddenAction(ref m)) if m.starts_with("Unable to update immutable role resource: `r1."))
        );
        assert!(check_immutable_update(
            &locked,
            &patch(json!({"name": "x", "options": {"immutable": false}}))
        )
        .is_err());
        let open = role(json!({}));
        assert!(check_immutable_update(&open, &patch(json!({"name": "x"}))).is_ok());
    }
}
