//! Effective roles: direct and group assignments, OS-INHERIT from the domain,
//! expanded through implied roles, as Keystone computes them for a token.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::Result;
use crate::store::{Project, Role, Store, TargetKind};

/// A role as a token carries it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct AssignmentService {
    store: Store,
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
        AssignmentService { store }
    }

    /// The user's effective roles on the target; empty means "no access".
    pub async fn effective_roles(
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
                        crate::store::SYSTEM_TARGET,
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
        let implied = self.store.list_implied_roles().await?;
        let roles = self.store.list_roles().await?;
        Ok(expand(&direct, &implied, &roles))
    }
}

/// Transitive closure over implied-role rules; cycles terminate.
pub fn expand(direct: &[String], implied: &[(String, String)], roles: &[Role]) -> Vec<RoleRef> {
    let mut rules: HashMap<&str, Vec<&str>> = HashMap::new();
    for (prior, imp) in implied {
        rules.entry(prior.as_str()).or_default().push(imp.as_str());
    }
    let names: HashMap<&str, &str> = roles
        .iter()
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
    fn deleted_roles_are_dropped() {
        let got = expand(&["ghost".to_string()], &[], &[role("reader")]);
        assert!(got.is_empty());
    }
}
