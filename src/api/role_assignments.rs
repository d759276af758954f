//! `GET /v3/role_assignments` (Keystone's `keystone/api/role_assignments.py`):
//! filters, `effective`, `include_names`, `include_subtree`, and the entry format
//! with its `links.assignment` (plus `membership` and `prior_role` for effective
//! entries derived from a group or an implied role).
//!
//! Policy: `identity:list_role_assignments`; a domain-scoped caller is checked with
//! `target.domain_id` set to its own domain and only sees assignments on that domain
//! and its projects. With `include_subtree`, `identity:list_role_assignments_for_tree`
//! is checked against the project named by `scope.project.id`.

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::valid_id;
use super::kit::{collection, resource, Caller, Links, QueryPairs, Router, Target};
use super::AppState;
use crate::assignment::{AssignmentQuery, AssignmentScope, NameBook, RoleAssignment};
use crate::model::ActorKind;

type Query = QueryPairs;

/// Present with a non-empty value (Keystone tests the value's truthiness).
fn value(q: &Query, name: &str) -> Option<String> {
    q.first(name).filter(|v| !v.is_empty()).map(str::to_string)
}

/// The query schema: ids are `[a-zA-Z0-9-]{1,64}` (user ids are free-form).
fn validate_ids(q: &Query) -> ApiResult<()> {
    for name in ["group.id", "role.id", "scope.domain.id", "scope.project.id"] {
        if let Some(v) = q.first(name) {
            if !valid_id(v) {
                return Err(ApiError::BadRequest(format!(
                    "Invalid input for query parameters {name}. Value: {v}. '{v}' does not match '^[a-zA-Z0-9-]+$'"
                )));
            }
        }
    }
    Ok(())
}

/// Keystone's `_assert_*` checks, with its messages.
fn assert_combinations(q: &Query) -> ApiResult<()> {
    let has = |n: &str| value(q, n).is_some();
    let bad = |m: &str| Err(ApiError::BadRequest(m.to_string()));
    if has("scope.domain.id") && has("scope.project.id") {
        return bad("Specify a domain or project, not both");
    }
    if has("scope.domain.id") && has("scope.system") {
        return bad("Specify system or domain, not both");
    }
    if has("scope.project.id") && has("scope.system") {
        return bad("Specify system or project, not both");
    }
    if has("user.id") && has("group.id") {
        return bad("Specify a user or group, not both");
    }
    if q.flag("effective") {
        if has("group.id") {
            return bad(
                "Combining effective and group filter will always result in an empty list.",
            );
        }
        if inherited(q).is_some() && has("scope.domain.id") {
            return bad("Combining effective, domain and inherited filters will always result in an empty list.");
        }
    }
    Ok(())
}

/// `scope.OS-INHERIT:inherited_to`: `projects` selects inherited assignments, any
/// other value non-inherited ones (Keystone's `_inherited`).
fn inherited(q: &Query) -> Option<bool> {
    q.first("scope.OS-INHERIT:inherited_to")
        .map(|v| v == "projects")
}

fn parse(q: &Query, include_subtree: bool, visible_in_domain: Option<String>) -> AssignmentQuery {
    AssignmentQuery {
        role_id: value(q, "role.id"),
        user_id: value(q, "user.id"),
        group_id: value(q, "group.id"),
        system: q.first("scope.system") == Some("all"),
        domain_id: value(q, "scope.domain.id"),
        project_id: value(q, "scope.project.id"),
        include_subtree,
        inherited: inherited(q),
        effective: q.flag("effective"),
        visible_in_domain,
    }
}

/// The query schema is checked before the caller, as Keystone's decorator does.
pub async fn list(
    req: HttpRequest,
    q: QueryPairs,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    validate_ids(&q)?;
    let caller = Caller::extract(&req).await?;
    let include_subtree = q.flag("include_subtree");
    let caller_domain = caller.scoped_domain().map(str::to_string);
    if include_subtree {
        let project_id = value(&q, "scope.project.id");
        let target = match &project_id {
            Some(p) => {
                let project = state.resource.get_project(p).await?;
                Target::of(
                    "project",
                    json!({"id": project.id, "name": project.name, "domain_id": project.domain_id,
                           "parent_id": project.parent_id, "enabled": project.enabled, "is_domain": false}),
                )
                .with("domain_id", json!(project.domain_id))
            }
            None => Target::none(),
        };
        caller.enforce("identity:list_role_assignments_for_tree", target)?;
        if project_id.is_none() {
            return Err(ApiError::BadRequest(
                "scope.project.id must be specified if include_subtree is also specified".into(),
            ));
        }
    } else {
        let target = match &caller_domain {
            Some(d) => Target::of("domain_id", json!(d)),
            None => Target::none(),
        };
        caller.enforce("identity:list_role_assignments", target)?;
    }
    assert_combinations(&q)?;
    // A domain-scoped caller only sees its domain and the projects in it.
    let visible = caller_domain.filter(|_| !include_subtree);
    let refs = state
        .assignment
        .list_role_assignments(&parse(&q, include_subtree, visible))
        .await?;
    let names = if q.flag("include_names") {
        Some(state.assignment.assignment_names(&refs).await?)
    } else {
        None
    };
    let base = links.at("/v3");
    let entries = refs
        .iter()
        .map(|r| format_entity(&base, r, names.as_ref()))
        .collect();
    Ok(collection(&links, "role_assignments", entries, None))
}

/// `{"id", "name", "domain": {"id", "name"}}` with names, `{"id"}` without.
fn named(id: &str, names: Option<(&NameBook, Option<&(String, String)>)>) -> Value {
    match names {
        None => json!({"id": id}),
        Some((book, entry)) => {
            let (name, domain_id) = entry.cloned().unwrap_or_default();
            let domain_name = book.domains.get(&domain_id).cloned().unwrap_or_default();
            json!({"id": id, "name": name, "domain": {"id": domain_id, "name": domain_name}})
        }
    }
}

/// Keystone's `_format_entity`, link for link.
fn format_entity(base: &str, r: &RoleAssignment, names: Option<&NameBook>) -> Value {
    let mut entity = Map::new();
    let mut links = Map::new();
    let mut inherited = r.inherited_to_projects;
    let mut link;
    let mut scope = Map::new();
    match &r.scope {
        AssignmentScope::Project(p) => {
            scope.insert(
                "project".into(),
                named(p, names.map(|b| (b, b.projects.get(p)))),
            );
            if let Some(d) = &r.indirect.domain_id {
                inherited = true;
                link = format!("/domains/{d}");
            } else if let Some(parent) = &r.indirect.project_id {
                inherited = true;
                link = format!("/projects/{parent}");
            } else {
                link = format!("/projects/{p}");
            }
        }
        AssignmentScope::Domain(d) => {
            let domain = match names {
                Some(b) => json!({"id": d, "name": b.domains.get(d).cloned().unwrap_or_default()}),
                None => json!({"id": d}),
            };
            scope.insert("domain".into(), domain);
            link = format!("/domains/{d}");
        }
        AssignmentScope::System => {
            scope.insert("system".into(), json!({"all": true}));
            link = "/system".to_string();
        }
    }
    match r.actor {
        ActorKind::User => {
            entity.insert(
                "user".into(),
                named(&r.actor_id, names.map(|b| (b, b.users.get(&r.actor_id)))),
            );
            if let Some(g) = &r.indirect.group_id {
                links.insert(
                    "membership".into(),
                    json!(format!("{base}/groups/{g}/users/{}", r.actor_id)),
                );
                link.push_str(&format!("/groups/{g}"));
            } else {
                link.push_str(&format!("/users/{}", r.actor_id));
            }
        }
        ActorKind::Group => {
            entity.insert(
                "group".into(),
                named(&r.actor_id, names.map(|b| (b, b.groups.get(&r.actor_id)))),
            );
            link.push_str(&format!("/groups/{}", r.actor_id));
        }
    }
    let role = match names.and_then(|b| b.roles.get(&r.role_id).map(|x| (b, x))) {
        Some((b, (name, Some(d)))) => json!({
            "id": r.role_id,
            "name": name,
            "domain": {"id": d, "name": b.domains.get(d).cloned().unwrap_or_default()},
        }),
        Some((_, (name, None))) => json!({"id": r.role_id, "name": name}),
        None => json!({"id": r.role_id}),
    };
    entity.insert("role".into(), role);
    // Keystone links an implied entry to the prior role's assignment, and writes its
    // `prior_role` link with the two ids in this (reversed) order.
    let mut prior_link = None;
    match &r.indirect.role_id {
        Some(prior) => {
            link.push_str(&format!("/roles/{prior}"));
            prior_link = Some(format!("/prior_role/{}/implies/{prior}", r.role_id));
        }
        None => link.push_str(&format!("/roles/{}", r.role_id)),
    }
    if inherited {
        scope.insert("OS-INHERIT:inherited_to".into(), json!("projects"));
        link = format!("/OS-INHERIT{link}/inherited_to_projects");
    }
    entity.insert("scope".into(), Value::Object(scope));
    links.insert("assignment".into(), json!(format!("{base}{link}")));
    if let Some(p) = prior_link {
        links.insert("prior_role".into(), json!(format!("{base}{p}")));
    }
    entity.insert("links".into(), Value::Object(links));
    Value::Object(entity)
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/role_assignments").get(list));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::Indirect;

    fn entry(scope: AssignmentScope, indirect: Indirect) -> RoleAssignment {
        RoleAssignment {
            actor: ActorKind::User,
            actor_id: "u".into(),
            scope,
            role_id: "r".into(),
            inherited_to_projects: false,
            indirect,
        }
    }

    #[test]
    fn links_follow_keystone() {
        let b = "http://k/v3";
        let v = format_entity(
            b,
            &entry(AssignmentScope::Project("p".into()), Indirect::default()),
            None,
        );
        assert_eq!(
            v["links"]["assignment"],
            "http://k/v3/projects/p/users/u/roles/r"
        );
        assert_eq!(v["scope"], json!({"project": {"id": "p"}}));

        let via_group = Indirect {
            group_id: Some("g".into()),
            ..Default::default()
        };
        let v = format_entity(
            b,
            &entry(AssignmentScope::Domain("d".into()), via_group),
            None,
        );
        assert_eq!(
            v["links"]["assignment"],
            "http://k/v3/domains/d/groups/g/roles/r"
        );
        assert_eq!(v["links"]["membership"], "http://k/v3/groups/g/users/u");

        let inherited_implied = Indirect {
            domain_id: Some("d".into()),
            role_id: Some("prior".into()),
            ..Default::default()
        };
        let v = format_entity(
            b,
            &entry(AssignmentScope::Project("p".into()), inherited_implied),
            None,
        );
        assert_eq!(
            v["links"]["assignment"],
            "http://k/v3/OS-INHERIT/domains/d/users/u/roles/prior/inherited_to_projects"
        );
        assert_eq!(
            v["links"]["prior_role"],
            "http://k/v3/prior_role/r/implies/prior"
        );
        assert_eq!(v["scope"]["OS-INHERIT:inherited_to"], "projects");

        let v = format_entity(
            b,
            &entry(AssignmentScope::System, Indirect::default()),
            None,
        );
        assert_eq!(v["scope"], json!({"system": {"all": true}}));
        assert_eq!(
            v["links"]["assignment"],
            "http://k/v3/system/users/u/roles/r"
        );
    }
}
