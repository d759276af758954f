//! Grants: one role for one actor on one target (`keystone/assignment/core.py`
//! create_grant / get_grant / delete_grant / list_grants and the system variants).
//!
//! Revoking a grant needs no revocation event: token validation recomputes roles, so
//! a token whose only grant was removed fails ("Could not find token") at once.

use super::{role_not_found, AssignmentService};
use crate::error::{Error, Result};
use crate::model::{ActorKind, Assignment, Role, TargetKind};

/// Keystone's RoleAssignmentNotFound text; Keystone's system target id is `system`.
fn assignment_not_found(a: &Assignment) -> Error {
    let target = match a.target {
        TargetKind::System => "system",
        _ => a.target_id.as_str(),
    };
    Error::not_found(format!(
        "Could not find role assignment with role: {}, user or group: {}, project, domain, or system: {target}.",
        a.role_id, a.actor_id
    ))
}

impl AssignmentService {
    /// 404 for a missing domain or project target (the system always exists).
    async fn require_target(&self, target: TargetKind, id: &str) -> Result<Option<String>> {
        match target {
            TargetKind::Domain => match self.store.get_domain(id).await? {
                Some(_) => Ok(None),
                None => Err(Error::not_found(format!("Could not find domain: {id}."))),
            },
            TargetKind::Project => match self.store.get_project(id).await? {
                Some(p) => Ok(Some(p.domain_id)),
                None => Err(Error::not_found(format!("Could not find project: {id}."))),
            },
            TargetKind::System => Ok(None),
        }
    }

    /// 404 for a missing user or group.
    pub async fn require_actor(&self, actor: ActorKind, id: &str) -> Result<()> {
        let found = match actor {
            ActorKind::User => self.store.get_user(id).await?.is_some(),
            ActorKind::Group => self.store.get_group(id).await?.is_some(),
        };
        if found {
            Ok(())
        } else {
            let kind = match actor {
                ActorKind::User => "user",
                ActorKind::Group => "group",
            };
            Err(Error::not_found(format!("Could not find {kind}: {id}.")))
        }
    }

    /// Idempotent: granting an existing assignment succeeds (Keystone's PUT is silent).
    /// A domain-specific role may only be granted on projects of its own domain, and
    /// never on the system.
    pub async fn create_grant(&self, a: &Assignment) -> Result<()> {
        let role = self.get_role(&a.role_id).await?;
        let project_domain = self.require_target(a.target, &a.target_id).await?;
        if let Some(role_domain) = &role.domain_id {
            match (a.target, project_domain) {
                (TargetKind::Project, Some(pd)) if pd != *role_domain => {
                    return Err(Error::ForbiddenAction(format!(
                        "Project {} must be in the same domain as the role {} being assigned.",
                        a.target_id, a.role_id
                    )));
                }
                (TargetKind::System, _) => {
                    return Err(Error::validation(format!(
                        "Role {} is a domain-specific role. Unable to use a domain-specific role in a system assignment.",
                        a.role_id
                    )));
                }
                _ => {}
            }
        }
        self.store.add_assignment(a).await?;
        Ok(())
    }

    /// The granted role, or 404 (role, then target, then the assignment itself).
    pub async fn check_grant(&self, a: &Assignment) -> Result<Role> {
        let role = self.get_role(&a.role_id).await?;
        self.require_target(a.target, &a.target_id).await?;
        if !self.store.has_assignment(a).await? {
            return Err(assignment_not_found(a));
        }
        Ok(role)
    }

    /// Revokes the grant; the actor need not exist any more, so grants left behind by
    /// a deleted user or group can still be cleaned up.
    pub async fn delete_grant(&self, a: &Assignment) -> Result<()> {
        if self.store.get_role(&a.role_id).await?.is_none() {
            return Err(role_not_found(&a.role_id));
        }
        if !self.store.remove_assignment(a).await? {
            return Err(assignment_not_found(a));
        }
        Ok(())
    }

    /// The roles granted to the actor on the target (inherited ones when `inherited`).
    pub async fn list_grants(
        &self,
        actor: ActorKind,
        actor_id: &str,
        target: TargetKind,
        target_id: &str,
        inherited: bool,
    ) -> Result<Vec<Role>> {
        self.require_target(target, target_id).await?;
        let ids = self
            .store
            .list_assignments(&crate::model::AssignmentFilter {
                actor: Some(actor),
                actor_ids: Some(vec![actor_id.to_string()]),
                targets: Some(vec![target]),
                target_ids: Some(vec![target_id.to_string()]),
                inherited: Some(inherited),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|a| a.role_id)
            .collect::<Vec<_>>();
        Ok(self
            .store
            .list_roles()
            .await?
            .into_iter()
            .filter(|r| ids.contains(&r.id))
            .collect())
    }
}
