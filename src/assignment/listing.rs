//! `GET /v3/role_assignments` without HTTP: Keystone's `list_role_assignments`
//! (`keystone/assignment/core.py`), direct and effective modes.
//!
//! Effective mode answers "what would a token carry": group assignments become one
//! entry per member, inherited assignments one entry per project below the
//! assignment point, implied roles are added (the prior role recorded as
//! `indirect.role_id`), and domain-specific roles are stripped. As in Keystone,
//! system assignments are not part of effective listings.

use std::collections::{HashMap, HashSet};

use super::AssignmentService;
use crate::error::{Error, Result};
use crate::model::{ActorKind, Assignment, AssignmentFilter, Project, Role, TargetKind};

/// The query parameters, already parsed (`scope.system` is true only for `all`).
#[derive(Clone, Debug, Default)]
pub struct AssignmentQuery {
    pub role_id: Option<String>,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub system: bool,
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub include_subtree: bool,
    /// `scope.OS-INHERIT:inherited_to`: Some(true) for `projects`, Some(false) for
    /// any other value, None when absent (both kinds).
    pub inherited: Option<bool>,
    pub effective: bool,
    /// A domain-scoped caller's domain: only assignments on it and its projects.
    pub visible_in_domain: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignmentScope {
    Project(String),
    Domain(String),
    System,
}

/// Where an effective entry came from (Keystone's `indirect` dict).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indirect {
    /// Membership of this group.
    pub group_id: Option<String>,
    /// An inherited assignment on this parent project...
    pub project_id: Option<String>,
    /// ... or on this domain.
    pub domain_id: Option<String>,
    /// Implied by this prior role.
    pub role_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleAssignment {
    pub actor: ActorKind,
    pub actor_id: String,
    pub scope: AssignmentScope,
    pub role_id: String,
    pub inherited_to_projects: bool,
    pub indirect: Indirect,
}

impl RoleAssignment {
    fn from_row(a: Assignment) -> Self {
        let scope = match a.target {
            TargetKind::Project => AssignmentScope::Project(a.target_id),
            TargetKind::Domain => AssignmentScope::Domain(a.target_id),
            TargetKind::System => AssignmentScope::System,
        };
        RoleAssignment {
            actor: a.actor,
            actor_id: a.actor_id,
            scope,
            role_id: a.role_id,
            inherited_to_projects: a.inherited,
            indirect: Indirect::default(),
        }
    }
}

/// Names for `include_names`, looked up once per listing. A missing entity has no
/// entry (Keystone then shows empty names for users and groups).
#[derive(Clone, Debug, Default)]
pub struct NameBook {
    /// id -> (name, domain_id)
    pub users: HashMap<String, (String, String)>,
    pub groups: HashMap<String, (String, String)>,
    pub projects: HashMap<String, (String, String)>,
    /// id -> name
    pub domains: HashMap<String, String>,
    /// id -> (name, domain_id)
    pub roles: HashMap<String, (String, Option<String>)>,
}

/// The project hierarchy, read once per listing.
struct Tree {
    projects: HashMap<String, Project>,
    children: HashMap<String, Vec<String>>,
}

impl Tree {
    fn new(all: Vec<Project>) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for p in &all {
            if let Some(parent) = &p.parent_id {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(p.id.clone());
            }
        }
        Tree {
            projects: all.into_iter().map(|p| (p.id.clone(), p)).collect(),
            children,
        }
    }

    fn get(&self, id: &str) -> Result<&Project> {
        self.projects
            .get(id)
            .ok_or_else(|| Error::not_found(format!("Could not find project: {id}.")))
    }

    /// Every descendant, the project itself excluded.
    fn subtree(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut stack: Vec<&str> = vec![id];
        while let Some(cur) = stack.pop() {
            for c in self.children.get(cur).into_iter().flatten() {
                if c != id && !out.contains(c) {
                    out.push(c.clone());
                    stack.push(c);
                }
            }
        }
        out
    }

    /// Every ancestor, nearest first.
    fn parents(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut next = self.projects.get(id).and_then(|p| p.parent_id.clone());
        while let Some(p) = next {
            if p == id || out.contains(&p) {
                break;
            }
            next = self.projects.get(&p).and_then(|x| x.parent_id.clone());
            out.push(p);
        }
        out
    }

    fn in_domain(&self, domain_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .projects
            .values()
            .filter(|p| p.domain_id == domain_id)
            .map(|p| p.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Keystone's driver query over project and domain assignments (system ones live
/// in another table there, so they never show up through this path).
fn driver_filter(
    role_id: Option<&str>,
    user_id: Option<&str>,
    group_ids: Option<&[String]>,
    domain_id: Option<&str>,
    project_ids: Option<&[String]>,
    inherited: Option<bool>,
) -> AssignmentFilter {
    let (actor, actor_ids) = match (group_ids, user_id) {
        (Some(g), _) => (Some(ActorKind::Group), Some(g.to_vec())),
        (None, Some(u)) => (Some(ActorKind::User), Some(vec![u.to_string()])),
        (None, None) => (None, None),
    };
    let (targets, target_ids) = match (project_ids, domain_id) {
        (Some(p), _) => (vec![TargetKind::Project], Some(p.to_vec())),
        (None, Some(d)) => (vec![TargetKind::Domain], Some(vec![d.to_string()])),
        (None, None) => (vec![TargetKind::Project, TargetKind::Domain], None),
    };
    AssignmentFilter {
        role_id: role_id.map(str::to_string),
        actor,
        actor_ids,
        targets: Some(targets),
        target_ids,
        inherited,
    }
}

impl AssignmentService {
    pub async fn list_role_assignments(&self, q: &AssignmentQuery) -> Result<Vec<RoleAssignment>> {
        let needs_tree = q.effective || (q.include_subtree && q.project_id.is_some());
        let tree = if needs_tree {
            Some(Tree::new(self.store.list_projects().await?))
        } else {
            None
        };
        let subtree_ids = match (&tree, &q.project_id, q.include_subtree) {
            (Some(t), Some(p), true) => {
                t.get(p)?;
                Some(t.subtree(p))
            }
            _ => None,
        };
        let listed = match tree {
            Some(tree) if q.effective => self.list_effective(q, &tree, subtree_ids).await?,
            _ => self.list_direct(q, subtree_ids).await?,
        };
        match &q.visible_in_domain {
            None => Ok(listed),
            Some(domain) => self.within_domain(listed, domain).await,
        }
    }

    /// Keeps assignments on `domain` and on its projects (one query for the projects).
    async fn within_domain(
        &self,
        listed: Vec<RoleAssignment>,
        domain: &str,
    ) -> Result<Vec<RoleAssignment>> {
        let filter = crate::model::ProjectFilter {
            domain_id: Some(domain.to_string()),
            ..Default::default()
        };
        let in_domain: HashSet<String> = self
            .store
            .list_projects_filtered(&filter, &Default::default())
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        Ok(listed
            .into_iter()
            .filter(|r| match &r.scope {
                AssignmentScope::Domain(d) => d == domain,
                AssignmentScope::Project(p) => in_domain.contains(p),
                AssignmentScope::System => false,
            })
            .collect())
    }

    /// Keystone's `_list_direct_role_assignments`.
    async fn list_direct(
        &self,
        q: &AssignmentQuery,
        subtree_ids: Option<Vec<String>>,
    ) -> Result<Vec<RoleAssignment>> {
        let project_ids = q.project_id.as_ref().map(|p| {
            let mut ids = subtree_ids.clone().unwrap_or_default();
            ids.push(p.clone());
            ids
        });
        let mut out: Vec<RoleAssignment> = Vec::new();
        if !q.system {
            let group_ids = q.group_id.clone().map(|g| vec![g]);
            let f = driver_filter(
                q.role_id.as_deref(),
                q.user_id.as_deref(),
                group_ids.as_deref(),
                q.domain_id.as_deref(),
                project_ids.as_deref(),
                q.inherited,
            );
            out.extend(
                self.store
                    .list_assignments(&f)
                    .await?
                    .into_iter()
                    .map(RoleAssignment::from_row),
            );
        }
        // Keystone adds system grants unless a project or domain was asked for; the
        // inherited filter does not apply to them.
        if q.system || (q.project_id.is_none() && q.domain_id.is_none()) {
            let (actor, actor_ids) = match (&q.user_id, &q.group_id) {
                (Some(u), _) => (Some(ActorKind::User), Some(vec![u.clone()])),
                (None, Some(g)) => (Some(ActorKind::Group), Some(vec![g.clone()])),
                (None, None) => (None, None),
            };
            let f = AssignmentFilter {
                role_id: q.role_id.clone(),
                actor,
                actor_ids,
                targets: Some(vec![TargetKind::System]),
                ..Default::default()
            };
            out.extend(
                self.store
                    .list_assignments(&f)
                    .await?
                    .into_iter()
                    .map(RoleAssignment::from_row),
            );
        }
        Ok(out)
    }

    /// Keystone's `_list_effective_role_assignments`.
    async fn list_effective(
        &self,
        q: &AssignmentQuery,
        tree: &Tree,
        subtree_ids: Option<Vec<String>>,
    ) -> Result<Vec<RoleAssignment>> {
        // Group entries are expanded away, and domains inherit nothing.
        if q.group_id.is_some() || (q.domain_id.is_some() && q.inherited == Some(true)) {
            return Ok(Vec::new());
        }
        let inherited = if q.domain_id.is_some() {
            Some(false)
        } else {
            q.inherited
        };
        let scope = Scope {
            tree,
            project_id: q.project_id.as_deref(),
            subtree_ids: subtree_ids.as_deref(),
            domain_id: q.domain_id.as_deref(),
            inherited,
        };
        let mut raw = self
            .assignments_for_actor(&scope, q.user_id.as_deref(), None)
            .await?;
        if let Some(user_id) = &q.user_id {
            let groups = self.store.list_group_ids_for_user(user_id).await?;
            if !groups.is_empty() {
                raw.extend(
                    self.assignments_for_actor(&scope, None, Some(&groups))
                        .await?,
                );
            }
        }
        let mut refs: Vec<RoleAssignment> = Vec::new();
        for r in raw {
            refs.extend(
                self.expand_indirect(r, &scope, q.user_id.as_deref())
                    .await?,
            );
        }
        let implied = self.store.list_implied_roles().await?;
        let refs = add_implied_roles(refs, &implied);
        let roles: HashMap<String, Role> = self
            .store
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(refs
            .into_iter()
            .filter(|r| roles.get(&r.role_id).is_some_and(|x| x.domain_id.is_none()))
            .filter(|r| q.role_id.as_ref().is_none_or(|id| *id == r.role_id))
            .collect())
    }

    /// Keystone's `list_role_assignments_for_actor`: every row that could affect
    /// the scope, before expansion.
    async fn assignments_for_actor(
        &self,
        s: &Scope<'_>,
        user_id: Option<&str>,
        group_ids: Option<&[String]>,
    ) -> Result<Vec<RoleAssignment>> {
        let of_interest = s.project_id.map(|p| {
            let mut ids = s.subtree_ids.map(<[String]>::to_vec).unwrap_or_default();
            ids.push(p.to_string());
            ids
        });
        let mut rows: Vec<Assignment> = Vec::new();
        if s.inherited != Some(true) {
            let f = driver_filter(
                None,
                user_id,
                group_ids,
                s.domain_id,
                of_interest.as_deref(),
                Some(false),
            );
            rows.extend(self.store.list_assignments(&f).await?);
        }
        if s.inherited != Some(false) {
            match s.project_id {
                Some(project_id) => {
                    let domain = s.tree.get(project_id)?.domain_id.clone();
                    let f =
                        driver_filter(None, user_id, group_ids, Some(&domain), None, Some(true));
                    rows.extend(self.store.list_assignments(&f).await?);
                    let mut sources = s.tree.parents(project_id);
                    if s.subtree_ids.is_some() {
                        sources.extend(of_interest.clone().unwrap_or_default());
                    }
                    if !sources.is_empty() {
                        let f = driver_filter(
                            None,
                            user_id,
                            group_ids,
                            None,
                            Some(&sources),
                            Some(true),
                        );
                        rows.extend(self.store.list_assignments(&f).await?);
                    }
                }
                None => {
                    let f = driver_filter(None, user_id, group_ids, None, None, Some(true));
                    rows.extend(self.store.list_assignments(&f).await?);
                }
            }
        }
        Ok(rows.into_iter().map(RoleAssignment::from_row).collect())
    }

    /// Keystone's `_expand_indirect_assignment`.
    async fn expand_indirect(
        &self,
        r: RoleAssignment,
        s: &Scope<'_>,
        user_id: Option<&str>,
    ) -> Result<Vec<RoleAssignment>> {
        let expand_group = |r: &RoleAssignment, users: &[String]| -> Vec<RoleAssignment> {
            users
                .iter()
                .map(|u| {
                    let mut x = r.clone();
                    x.indirect.group_id = Some(x.actor_id.clone());
                    x.actor = ActorKind::User;
                    x.actor_id = u.clone();
                    x
                })
                .collect()
        };
        // A group entry's members; with a user filter the entry came from that
        // user's own groups, so the user is the only member of interest.
        let group_users = |r: &RoleAssignment| {
            let gid = r.actor_id.clone();
            let user = user_id.map(str::to_string);
            let store = self.store.clone();
            async move {
                match user {
                    Some(u) => Ok::<_, Error>(vec![u]),
                    None => Ok(store
                        .list_users_in_group(&gid, &Default::default())
                        .await?
                        .into_iter()
                        .map(|u| u.id)
                        .collect()),
                }
            }
        };
        if r.inherited_to_projects {
            let project_ids: Vec<String> = match (s.project_id, &r.scope) {
                (Some(p), scope) => {
                    let mut ids = vec![p.to_string()];
                    if let Some(sub) = s.subtree_ids {
                        ids.extend(sub.iter().cloned());
                        if let AssignmentScope::Project(at) = scope {
                            if ids.contains(at) {
                                ids = s.tree.subtree(at);
                            }
                        }
                    }
                    ids
                }
                (None, AssignmentScope::Domain(d)) => s.tree.in_domain(d),
                (None, AssignmentScope::Project(at)) => s.tree.subtree(at),
                (None, AssignmentScope::System) => Vec::new(),
            };
            let bases = if r.actor == ActorKind::Group {
                expand_group(&r, &group_users(&r).await?)
            } else {
                vec![r]
            };
            let mut out = Vec::new();
            for base in bases {
                for pid in &project_ids {
                    let mut x = base.clone();
                    match &x.scope {
                        AssignmentScope::Project(at) => x.indirect.project_id = Some(at.clone()),
                        AssignmentScope::Domain(d) => x.indirect.domain_id = Some(d.clone()),
                        AssignmentScope::System => {}
                    }
                    x.scope = AssignmentScope::Project(pid.clone());
                    x.inherited_to_projects = false;
                    out.push(x);
                }
            }
            return Ok(out);
        }
        if r.actor == ActorKind::Group {
            let users = group_users(&r).await?;
            return Ok(expand_group(&r, &users));
        }
        Ok(vec![r])
    }

    /// Names of every user, group, project, domain and role the entries mention.
    pub async fn assignment_names(&self, refs: &[RoleAssignment]) -> Result<NameBook> {
        let mut book = NameBook::default();
        let mut domains: HashSet<String> = HashSet::new();
        for r in refs {
            match r.actor {
                ActorKind::User if !book.users.contains_key(&r.actor_id) => {
                    if let Some(u) = self.store.get_user(&r.actor_id).await? {
                        domains.insert(u.domain_id.clone());
                        book.users.insert(u.id, (u.name, u.domain_id));
                    }
                }
                ActorKind::Group if !book.groups.contains_key(&r.actor_id) => {
                    if let Some(g) = self.store.get_group(&r.actor_id).await? {
                        domains.insert(g.domain_id.clone());
                        book.groups.insert(g.id, (g.name, g.domain_id));
                    }
                }
                _ => {}
            }
            match &r.scope {
                AssignmentScope::Project(p) if !book.projects.contains_key(p) => {
                    if let Some(p) = self.store.get_project(p).await? {
                        domains.insert(p.domain_id.clone());
                        book.projects.insert(p.id, (p.name, p.domain_id));
                    }
                }
                AssignmentScope::Domain(d) => {
                    domains.insert(d.clone());
                }
                _ => {}
            }
            if !book.roles.contains_key(&r.role_id) {
                if let Some(role) = self.store.get_role(&r.role_id).await? {
                    if let Some(d) = &role.domain_id {
                        domains.insert(d.clone());
                    }
                    book.roles.insert(role.id, (role.name, role.domain_id));
                }
            }
        }
        for d in domains {
            if let Some(domain) = self.store.get_domain(&d).await? {
                book.domains.insert(domain.id, domain.name);
            }
        }
        Ok(book)
    }
}

/// What an effective listing is restricted to.
struct Scope<'a> {
    tree: &'a Tree,
    project_id: Option<&'a str>,
    subtree_ids: Option<&'a [String]>,
    domain_id: Option<&'a str>,
    inherited: Option<bool>,
}

/// Keystone's `add_implied_roles`: each entry is copied once per role its role
/// implies (transitively), recording the prior role; a cycle stops where an
/// identical entry was already checked.
fn add_implied_roles(refs: Vec<RoleAssignment>, rules: &[(String, String)]) -> Vec<RoleAssignment> {
    let mut implies: HashMap<&str, Vec<&str>> = HashMap::new();
    for (prior, implied) in rules {
        implies
            .entry(prior.as_str())
            .or_default()
            .push(implied.as_str());
    }
    let mut results = refs.clone();
    let mut to_check = refs;
    let mut checked: Vec<RoleAssignment> = Vec::new();
    while let Some(next) = to_check.pop() {
        checked.push(next.clone());
        for implied in implies.get(next.role_id.as_str()).into_iter().flatten() {
            let mut x = next.clone();
            x.indirect.role_id = Some(next.role_id.clone());
            x.role_id = (*implied).to_string();
            if checked.contains(&x) {
                continue;
            }
            results.push(x.clone());
            to_check.push(x);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(role: &str) -> RoleAssignment {
        RoleAssignment {
            actor: ActorKind::User,
            actor_id: "u".into(),
            scope: AssignmentScope::Project("p".into()),
            role_id: role.into(),
            inherited_to_projects: false,
            indirect: Indirect::default(),
        }
    }

    fn rules(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn implied_chain_records_the_prior_role() {
        let got = add_implied_roles(vec![entry("r0")], &rules(&[("r0", "r1"), ("r1", "r2")]));
        let pairs: Vec<(String, Option<String>)> = got
            .iter()
            .map(|r| (r.role_id.clone(), r.indirect.role_id.clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("r0".into(), None),
                ("r1".into(), Some("r0".into())),
                ("r2".into(), Some("r1".into()))
            ]
        );
    }

    /// Keystone's test_circular_inferences: 0->1, 1->{2,3}, 3->0 gives five entries.
    #[test]
    fn circular_rules_terminate_like_keystone() {
        let got = add_implied_roles(
            vec![entry("r0")],
            &rules(&[("r0", "r1"), ("r1", "r2"), ("r1", "r3"), ("r3", "r0")]),
        );
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got
            .iter()
            .any(|r| r.role_id == "r0" && r.indirect.role_id.as_deref() == Some("r3")));
    }

    #[test]
    fn tree_walks() {
        let p = |id: &str, parent: Option<&str>| Project {
            id: id.into(),
            name: id.into(),
            domain_id: "d".into(),
            parent_id: parent.map(str::to_string),
            description: String::new(),
            enabled: true,
            extra: Default::default(),
        };
        let t = Tree::new(vec![
            p("a", None),
            p("b", Some("a")),
            p("c", Some("b")),
            p("x", None),
        ]);
        let mut sub = t.subtree("a");
        sub.sort();
        assert_eq!(sub, vec!["b", "c"]);
        assert_eq!(t.parents("c"), vec!["b", "a"]);
        assert_eq!(t.in_domain("d").len(), 4);
        assert!(t.get("nope").is_err());
    }
}
