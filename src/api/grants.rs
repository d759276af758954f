//! Grants: `/v3/{projects|domains}/{id}/{users|groups}/{id}/roles[/{role_id}]`,
//! `/v3/system/{users|groups}/{id}/roles[/{role_id}]` and the OS-INHERIT variants
//! (Keystone's `keystone/api/projects.py`, `domains.py`, `system.py`, `os_inherit.py`).
//!
//! Every route shares four handlers; the route itself says which actor, target and
//! inheritance it is about (`GrantRoute`, attached as resource data). The policy
//! target holds the full entities (`target.role`, `target.user` or `target.group`,
//! `target.project` or `target.domain`), loaded in Keystone's order so unknown ids
//! answer 404 with Keystone's messages before the policy decides.
//!
//! Removing a grant takes effect at once: tokens are validated against the roles in
//! the database, never against a copy made at issue time.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::{collection, no_content, resource, Caller, Links, Router, Target};
use super::roles::{render as render_role, role_target};
use super::AppState;
use crate::error::Error;
use crate::model::{
    ActorKind, Assignment, Domain, Group, Project, TargetKind, User, SYSTEM_TARGET,
};

/// What a grant route is about.
#[derive(Clone, Copy, Debug)]
struct GrantRoute {
    actor: ActorKind,
    target: TargetKind,
    inherited: bool,
    /// OS-INHERIT routes load the policy target leniently: a missing entity leaves
    /// its slot empty and the policy decides before any 404 (Keystone's os_inherit.py).
    lenient: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Check,
    Create,
    Revoke,
    List,
}

impl GrantRoute {
    fn action(&self, verb: Verb) -> &'static str {
        match (self.target, self.actor, verb) {
            (TargetKind::System, ActorKind::User, Verb::Check) => {
                "identity:check_system_grant_for_user"
            }
            (TargetKind::System, ActorKind::User, Verb::Create) => {
                "identity:create_system_grant_for_user"
            }
            (TargetKind::System, ActorKind::User, Verb::Revoke) => {
                "identity:revoke_system_grant_for_user"
            }
            (TargetKind::System, ActorKind::User, Verb::List) => {
                "identity:list_system_grants_for_user"
            }
            (TargetKind::System, ActorKind::Group, Verb::Check) => {
                "identity:check_system_grant_for_group"
            }
            (TargetKind::System, ActorKind::Group, Verb::Create) => {
                "identity:create_system_grant_for_group"
            }
            (TargetKind::System, ActorKind::Group, Verb::Revoke) => {
                "identity:revoke_system_grant_for_group"
            }
            (TargetKind::System, ActorKind::Group, Verb::List) => {
                "identity:list_system_grants_for_group"
            }
            (_, _, Verb::Check) => "identity:check_grant",
            (_, _, Verb::Create) => "identity:create_grant",
            (_, _, Verb::Revoke) => "identity:revoke_grant",
            (_, _, Verb::List) => "identity:list_grants",
        }
    }
}

fn user_target(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "default_project_id": u.default_project_id,
    })
}

fn group_target(g: &Group) -> Value {
    json!({"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description})
}

fn project_target(p: &Project) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "parent_id": p.parent_id,
        "enabled": p.enabled,
        "is_domain": false,
    })
}

fn domain_target(d: &Domain) -> Value {
    json!({"id": d.id, "name": d.name, "enabled": d.enabled})
}

/// The ids in the path.
struct Ids {
    actor_id: String,
    target_id: String,
    role_id: Option<String>,
}

fn ids(req: &HttpRequest, route: &GrantRoute) -> ApiResult<Ids> {
    let m = req.match_info();
    let actor_id = match route.actor {
        ActorKind::User => m.get("user_id"),
        ActorKind::Group => m.get("group_id"),
    };
    let target_id = match route.target {
        TargetKind::Project => m.get("project_id"),
        TargetKind::Domain => m.get("domain_id"),
        TargetKind::System => Some(SYSTEM_TARGET),
    };
    match (actor_id, target_id) {
        (Some(a), Some(t)) => Ok(Ids {
            actor_id: a.to_string(),
            target_id: t.to_string(),
            role_id: m.get("role_id").map(str::to_string),
        }),
        _ => Err(ApiError::NoSuchRoute),
    }
}

fn route(req: &HttpRequest) -> ApiResult<GrantRoute> {
    req.app_data::<GrantRoute>()
        .copied()
        .ok_or(ApiError::NoSuchRoute)
}

/// Adds `slot` to the target, or a 404 (or an empty slot on lenient routes).
fn put_slot(
    target: &mut Map<String, Value>,
    slot: &str,
    found: crate::error::Result<Value>,
    lenient: bool,
) -> ApiResult<()> {
    match found {
        Ok(v) => {
            target.insert(slot.into(), v);
            Ok(())
        }
        Err(Error::NotFound(_)) if lenient => {
            target.insert(slot.into(), json!({}));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn role_slot(
    state: &AppState,
    ids: &Ids,
    t: &mut Map<String, Value>,
    lenient: bool,
) -> ApiResult<()> {
    if let Some(id) = &ids.role_id {
        let found = state.assignment.get_role(id).await.map(|r| role_target(&r));
        put_slot(t, "role", found, lenient)?;
    }
    Ok(())
}

async fn actor_slot(
    state: &AppState,
    route: &GrantRoute,
    ids: &Ids,
    t: &mut Map<String, Value>,
    allow_missing: bool,
) -> ApiResult<()> {
    let (slot, found) = match route.actor {
        ActorKind::User => (
            "user",
            state
                .identity
                .get_user(&ids.actor_id)
                .await
                .map(|u| user_target(&u)),
        ),
        ActorKind::Group => (
            "group",
            state
                .identity
                .get_group(&ids.actor_id)
                .await
                .map(|g| group_target(&g)),
        ),
    };
    match found {
        Err(Error::NotFound(_)) if allow_missing => Ok(()),
        found => put_slot(t, slot, found, route.lenient),
    }
}

async fn target_slot(
    state: &AppState,
    route: &GrantRoute,
    ids: &Ids,
    t: &mut Map<String, Value>,
) -> ApiResult<()> {
    match route.target {
        TargetKind::Project => {
            let found = state
                .resource
                .get_project(&ids.target_id)
                .await
                .map(|p| project_target(&p));
            put_slot(t, "project", found, route.lenient)
        }
        TargetKind::Domain => {
            let found = state
                .resource
                .get_domain(&ids.target_id)
                .await
                .map(|d| domain_target(&d));
            put_slot(t, "domain", found, route.lenient)
        }
        TargetKind::System => Ok(()),
    }
}

/// Keystone's `_build_enforcement_target*`: loads role, actor and target in the order
/// of the API it mirrors (domains.py loads the domain first, the others last).
/// `allow_missing_actor` (revocation) leaves out an actor that no longer exists, so
/// its leftover grants can still be removed.
async fn build_target(
    state: &AppState,
    route: &GrantRoute,
    ids: &Ids,
    allow_missing_actor: bool,
) -> ApiResult<Target> {
    let mut t = Map::new();
    let domain_first = route.target == TargetKind::Domain && !route.lenient;
    if domain_first {
        target_slot(state, route, ids, &mut t).await?;
    }
    role_slot(state, ids, &mut t, route.lenient).await?;
    actor_slot(state, route, ids, &mut t, allow_missing_actor).await?;
    if !domain_first {
        target_slot(state, route, ids, &mut t).await?;
    }
    Ok(t.into_iter()
        .fold(Target::none(), |target, (k, v)| target.with(&k, v)))
}

fn assignment(route: &GrantRoute, ids: &Ids) -> ApiResult<Assignment> {
    Ok(Assignment {
        actor: route.actor,
        actor_id: ids.actor_id.clone(),
        target: route.target,
        target_id: ids.target_id.clone(),
        role_id: ids.role_id.clone().ok_or(ApiError::NoSuchRoute)?,
        inherited: route.inherited,
    })
}

/// The target (404s), then the policy (403). Returns the route and ids.
async fn authorized(
    caller: &Caller,
    req: &HttpRequest,
    state: &AppState,
    verb: Verb,
) -> ApiResult<(GrantRoute, Ids)> {
    let route = route(req)?;
    let ids = ids(req, &route)?;
    let target = build_target(state, &route, &ids, verb == Verb::Revoke).await?;
    caller.enforce(route.action(verb), target)?;
    Ok((route, ids))
}

/// GET and HEAD: 204 when the grant exists (Keystone answers 204 to both).
pub async fn check(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (route, ids) = authorized(&caller, &req, &state, Verb::Check).await?;
    state
        .assignment
        .check_grant(&assignment(&route, &ids)?)
        .await?;
    Ok(no_content())
}

/// PUT: 204, idempotent.
pub async fn create(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (route, ids) = authorized(&caller, &req, &state, Verb::Create).await?;
    if route.lenient {
        // Keystone would store a grant for a user that does not exist; we refuse.
        state
            .assignment
            .require_actor(route.actor, &ids.actor_id)
            .await?;
    }
    state
        .assignment
        .create_grant(&assignment(&route, &ids)?)
        .await?;
    Ok(no_content())
}

pub async fn revoke(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (route, ids) = authorized(&caller, &req, &state, Verb::Revoke).await?;
    state
        .assignment
        .delete_grant(&assignment(&route, &ids)?)
        .await?;
    Ok(no_content())
}

/// The granted roles, as a role collection.
pub async fn list(
    caller: Caller,
    req: HttpRequest,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (route, ids) = authorized(&caller, &req, &state, Verb::List).await?;
    let roles = state
        .assignment
        .list_grants(
            route.actor,
            &ids.actor_id,
            route.target,
            &ids.target_id,
            route.inherited,
        )
        .await?;
    let rendered = roles.iter().map(|r| render_role(&links, r)).collect();
    Ok(collection(&links, "roles", rendered, None))
}

pub fn routes(r: &mut Router) {
    use ActorKind::{Group, User};
    use TargetKind::{Domain, Project, System};
    let grant = |actor, target, inherited, lenient| GrantRoute {
        actor,
        target,
        inherited,
        lenient,
    };
    let member =
        |path: String, g: GrantRoute| resource(path).data(g).get(check).put(create).delete(revoke);
    let listing = |path: String, g: GrantRoute| resource(path).data(g).get(list);
    for (actor, a) in [(User, "users/{user_id}"), (Group, "groups/{group_id}")] {
        for (target, t) in [
            (Project, "projects/{project_id}"),
            (Domain, "domains/{domain_id}"),
            (System, "system"),
        ] {
            let g = grant(actor, target, false, false);
            r.add(member(format!("/v3/{t}/{a}/roles/{{role_id}}"), g))
                .add(listing(format!("/v3/{t}/{a}/roles"), g));
        }
        // OS-INHERIT: checks, grants and revocations on domains and projects, and
        // listings on domains only (as in Keystone).
        for (target, t) in [
            (Domain, "domains/{domain_id}"),
            (Project, "projects/{project_id}"),
        ] {
            let path = format!("/v3/OS-INHERIT/{t}/{a}/roles/{{role_id}}/inherited_to_projects");
            r.add(member(path, grant(actor, target, true, true)));
        }
        let path = format!("/v3/OS-INHERIT/domains/{{domain_id}}/{a}/roles/inherited_to_projects");
        r.add(listing(path, grant(actor, Domain, true, true)));
    }
}
