//! Roles, implied roles, grants and role assignments: Keystone's assignment rules,
//! without HTTP or SQL.
//!
//! Effective roles (what a token carries) are recomputed from the database at every
//! token validation: direct and group assignments, OS-INHERIT from the domain and
//! from parent projects, expanded through implied roles, with domain-specific roles
//! stripped. That is why revoking a grant, deleting a role or removing an inference
//! rule needs no revocation event: the next validation of a token sees the change.

mod grants;
mod listing;
mod roles;

pub use listing::{AssignmentQuery, AssignmentScope, Indirect, NameBook, RoleAssignment};
pub use roles::{check_immutable_update, is_immutable, role_options};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::cache::{read_through, GenerationCache};
use crate::error::{Error, Result};
use crate::model::{Project, Role, TargetKind};
use crate::store::Store;

/// A role as a token carries it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct AssignmentService {
    store: Store,
    /// Effective roles per (user, scope), when the read cache is on: a token
    /// validation that misses the token cache then costs no role queries for a
    /// user and scope seen since the last write.
    effective: Option<GenerationCache<(String, ScopeKey), Vec<RoleRef>>>,
    /// Every role and implication rule, read once per generation when the read cache
    /// is on: each uncached role computation needs both.
    role_graph: Option<GenerationCache<(), Arc<RoleGraph>>>,
}

struct RoleGraph {
    implied: Vec<(String, String)>,
    roles: Vec<Role>,
}

/// A [`RoleTarget`] as a cache key. A project's roles also depend on its domain
/// and parents, but changing those is a write, which moves the generation.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum ScopeKey {
    Project(String),
    Domain(String),
    System,
}

impl From<RoleTarget<'_>> for ScopeKey {
    fn from(t: RoleTarget<'_>) -> Self {
        match t {
            RoleTarget::Project(p) => ScopeKey::Project(p.id.clone()),
            RoleTarget::Domain(d) => ScopeKey::Domain(d.to_string()),
            RoleTarget::System => ScopeKey::System,
        }
    }
}

/// What a token is scoped to, for role computation.
#[derive(Clone, Copy, Debug)]
pub enum RoleTarget<'a> {
    Project(&'a Project),
    Domain(&'a str),
    System,
}

impl AssignmentService {
    pub fn new(store: Store) -> Self {
        AssignmentService {
            store,
            effective: None,
            role_graph: None,
        }
    }

    /// Caches effective roles under the state generation (see [`crate::cache`]).
    pub fn with_read_cache(mut self, capacity: u64, ttl: std::time::Duration) -> Self {
        let generation = self.store.generation();
        self.effective =
            Some(GenerationCache::new(generation.clone(), capacity, ttl).named("effective_roles"));
        self.role_graph =
            Some(GenerationCache::new(generation.clone(), 1, ttl).named("role_graph"));
        self
    }

    async fn role_graph(&self) -> Result<Arc<RoleGraph>> {
        let load = || async {
            Ok::<_, Error>(Arc::new(RoleGraph {
                implied: self.store.list_implied_roles().await?,
                roles: self.store.list_roles().await?,
            }))
        };
        read_through(self.role_graph.as_ref(), (), load).await
    }

    /// Ids of the projects or domains where the user holds a role directly or
    /// through a group (not counting inherited assignments).
    pub async fn target_ids_for_user(
        &self,
        user_id: &str,
        target: TargetKind,
    ) -> Result<Vec<String>> {
        Ok(self.store.list_target_ids_for_user(user_id, target).await?)
    }

    /// The enabled domains the user can scope a token to.
    pub async fn domains_for_user(&self, user_id: &str) -> Result<Vec<crate::model::Domain>> {
        let mut out = Vec::new();
        for id in self
            .target_ids_for_user(user_id, TargetKind::Domain)
            .await?
        {
            if let Some(d) = self.store.get_domain(&id).await?.filter(|d| d.enabled) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The user's effective roles on the target; empty means "no access".
    pub async fn effective_roles(
        &self,
        user_id: &str,
        target: RoleTarget<'_>,
    ) -> Result<Vec<RoleRef>> {
        read_through(
            self.effective.as_ref(),
            (user_id.to_string(), target.into()),
            || self.compute_effective_roles(user_id, target),
        )
        .await
    }

    async fn compute_effective_roles(
        &self,
        user_id: &str,
        target: RoleTarget<'_>,
    ) -> Result<Vec<RoleRef>> {
        let mut direct: Vec<String> = match target {
            RoleTarget::Project(p) => {
                let mut ids = self
                    .store
                    .list_user_role_ids_on(user_id, TargetKind::Project, &p.id, false)
                    .await?;
                // OS-INHERIT: assignments on the owning domain marked inherited apply to its projects.
                ids.extend(
                    self.store
                        .list_user_role_ids_on(user_id, TargetKind::Domain, &p.domain_id, true)
                        .await?,
                );
                // ... and so do inherited assignments on any ancestor project.
                for parent in self.project_parents(p).await? {
                    ids.extend(
                        self.store
                            .list_user_role_ids_on(user_id, TargetKind::Project, &parent, true)
                            .await?,
                    );
                }
                ids
            }
            RoleTarget::Domain(domain_id) => {
                self.store
                    .list_user_role_ids_on(user_id, TargetKind::Domain, domain_id, false)
                    .await?
            }
            RoleTarget::System => {
                self.store
                    .list_user_role_ids_on(
                        user_id,
                        TargetKind::System,
                        crate::model::SYSTEM_TARGET,
                        false,
                    )
                    .await?
            }
        };
        if direct.is_empty() {
            return Ok(Vec::new());
        }
        direct.sort();
        direct.dedup();
        let graph = self.role_graph().await?;
        Ok(expand(&direct, &graph.implied, &graph.roles))
    }

    /// The global roles `role_ids` stand for with the implied-role closure (trust
    /// roles, as Keystone's `add_implied_roles`); unknown ids are dropped.
    /// The full roles behind `refs`, in their order (a trust-scoped token renders its
    /// roles as whole role references, as Keystone's does).
    pub async fn role_models(&self, refs: &[RoleRef]) -> Result<Vec<Role>> {
        let graph = self.role_graph().await?;
        Ok(refs
            .iter()
            .filter_map(|r| graph.roles.iter().find(|x| x.id == r.id).cloned())
            .collect())
    }

    pub async fn implied_closure(&self, role_ids: &[String]) -> Result<Vec<RoleRef>> {
        let graph = self.role_graph().await?;
        Ok(expand(role_ids, &graph.implied, &graph.roles))
    }

    /// Ids of the project's ancestors, nearest first (a broken or cyclic chain stops).
    async fn project_parents(&self, p: &Project) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut next = p.parent_id.clone();
        while let Some(id) = next {
            if id == p.id || out.contains(&id) {
                break;
            }
            next = self.store.get_project(&id).await?.and_then(|x| x.parent_id);
            out.push(id);
        }
        Ok(out)
    }
}

/// Keystone's RoleNotFound text.
pub(crate) fn role_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find role: {id}."))
}

/// Transitive closure over implied-role rules; cycles terminate. Domain-specific roles
/// only serve to infer global ones: they are dropped from the result, as Keystone's
/// `_strip_domain_roles` keeps them out of tokens.
pub fn expand(direct: &[String], implied: &[(String, String)], roles: &[Role]) -> Vec<RoleRef> {
    let mut rules: HashMap<&str, Vec<&str>> = HashMap::new();
    for (prior, imp) in implied {
        rules.entry(prior.as_str()).or_default().push(imp.as_str());
    }
    let names: HashMap<&str, &str> = roles
        .iter()
        .filter(|r| r.domain_id.is_none())
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = direct.iter().map(String::as_str).collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            if let Some(next) = rules.get(id) {
                stack.extend(next.iter().copied());
            }
        }
    }
    let mut out: BTreeMap<&str, &str> = BTreeMap::new();
    for id in seen {
        if let Some(name) = names.get(id) {
            out.insert(id, name);
        }
    }
    out.into_iter()
        .map(|(id, name)| RoleRef {
            id: id.to_string(),
            name: name.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str) -> Role {
        Role {
            id: id.into(),
            name: format!("{id}-name"),
            domain_id: None,
            description: String::new(),
            extra: Default::default(),
        }
    }

    #[test]
    fn implied_chain_and_cycles() {
        let roles = vec![
            role("admin"),
            role("manager"),
            role("member"),
            role("reader"),
        ];
        let implied = vec![
            ("admin".to_string(), "manager".to_string()),
            ("manager".to_string(), "member".to_string()),
            ("member".to_string(), "reader".to_string()),
            ("reader".to_string(), "admin".to_string()),
        ];
        let got = expand(&["member".to_string()], &implied, &roles);
        assert_eq!(
            got.len(),
            4,
            "cycle must terminate and include everything reachable"
        );
        let got = expand(&["manager".to_string()], &implied[..3], &roles);
        let ids: Vec<_> = got.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["manager", "member", "reader"]);
    }

    #[test]
    fn domain_roles_infer_but_never_appear() {
        let mut domain_role = role("d1");
        domain_role.domain_id = Some("dom".into());
        let roles = vec![domain_role, role("reader")];
        let implied = vec![("d1".to_string(), "reader".to_string())];
        let got = expand(&["d1".to_string()], &implied, &roles);
        let ids: Vec<_> = got.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["reader"]);
    }

    #[test]
    fn deleted_roles_are_dropped() {
        let got = expand(&["ghost".to_string()], &[], &[role("reader")]);
        assert!(got.is_empty());
    }
}
