//! /v3/groups and group membership: Keystone's `keystone/api/groups.py`.
//!
//! As in Keystone, GET/PATCH and the membership routes enforce with whatever of the
//! group and user exists (a caller without rights cannot probe ids), while DELETE
//! loads the group first and answers 404 before policy.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    description_attr, extra_attrs, id_attr, invalid, name_attr, non_empty, normalize_keys,
    require_same_domain, require_same_id, JsonBody, TopLevel,
};
use super::kit::{
    collection, entity, no_content, page_links, resource, Caller, Links, PageQuery, Query, Router,
    Target,
};
use super::users::{group_dict, render_group, text_matches, user_dict, user_filter, UserListQuery};
use super::AppState;
use crate::error::Error;
use crate::identity::UserRef;
use crate::model::{new_id, Group, GroupFilter};

const KNOWN: &[&str] = &["id", "name", "domain_id", "description", "links"];

/// Keystone's `_identity_name` limit for group names.
const NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 255;

fn group_not_found(id: &str) -> ApiError {
    Error::not_found(format!("Could not find group: {id}.")).into()
}

async fn find_group(state: &AppState, id: &str) -> ApiResult<Option<Group>> {
    match state.identity.get_group(id).await {
        Ok(g) => Ok(Some(g)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn group_target(group: Option<&Group>) -> Target {
    Target::none().with_found("group", group.map(|g| Value::Object(group_dict(g))))
}

/// Loads the group if it exists, then enforces `action` with whatever was found.
async fn authorized_group(
    caller: &Caller,
    state: &AppState,
    id: &str,
    action: &str,
) -> ApiResult<Option<Group>> {
    let group = find_group(state, id).await?;
    caller.enforce(action, group_target(group.as_ref()).arg("group_id", id))?;
    Ok(group)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct GroupListQuery {
    domain_id: Option<String>,
    name: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list(
    caller: Caller,
    query: Query<GroupListQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain = caller.scoped_domain();
    let target = match domain {
        Some(d) => Target::of("group", json!({ "domain_id": d })),
        None => Target::none(),
    };
    caller.enforce("identity:list_groups", target)?;
    let filter = GroupFilter {
        domain_id: query.domain_id.clone(),
        name: query.name.clone(),
        within_domain: domain.map(str::to_string),
        name_matches: text_matches(&query.pairs, "name"),
    };
    let request = query
        .page
        .request(state.settings.identity.list_limit, &state.settings.default)?;
    let page = state.identity.list_groups(&filter, &request).await?;
    let next = page_links(&page, &request, |g| &g.id);
    let rendered = page.items.iter().map(|g| render_group(&links, g)).collect();
    Ok(collection(&links, "groups", rendered, Some(next)))
}

pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let group = authorized_group(&caller, &state, &path, "identity:get_group")
        .await?
        .ok_or_else(|| group_not_found(&path))?;
    Ok(entity(
        StatusCode::OK,
        "group",
        render_group(&links, &group),
    ))
}

pub async fn create(
    caller: Caller,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let raw = json.entity("group", TopLevel::Closed)?;
    let body = normalize_keys(&raw);
    let name = name_attr(&body, "name", NAME_MAX)?
        .ok_or_else(|| invalid("group", "'name' is a required property"))?;
    let domain_id = id_attr(&body, "domain_id", false)?.flatten();
    let description = description_attr(&body, DESCRIPTION_MAX)?
        .flatten()
        .unwrap_or_default();
    // Enforced on the body as sent, before the domain is filled in (Keystone).
    caller.enforce(
        "identity:create_group",
        Target::of("group", Value::Object(raw)),
    )?;
    let domain_id = domain_id.unwrap_or_else(|| {
        caller
            .scoped_domain()
            .unwrap_or(&state.settings.identity.default_domain_id)
            .to_string()
    });
    let group = Group {
        id: new_id(),
        name,
        domain_id,
        description,
        extra: extra_attrs(&body, KNOWN),
    };
    let group = state.identity.create_group(group).await?;
    Ok(entity(
        StatusCode::CREATED,
        "group",
        render_group(&links, &group),
    ))
}

pub async fn update(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let found = authorized_group(&caller, &state, &path, "identity:update_group").await?;
    let body = json.entity("group", TopLevel::Closed)?;
    non_empty(&body, "group")?;
    let name = name_attr(&body, "name", NAME_MAX)?;
    let description = description_attr(&body, DESCRIPTION_MAX)?;
    let mut group = found.ok_or_else(|| group_not_found(&path))?;
    require_same_id(&body, &group.id)?;
    let named_domain = require_same_domain(&body, &group.domain_id)?;
    if let Some(name) = name {
        group.name = name;
    }
    if let Some(d) = description {
        group.description = d.unwrap_or_default();
    }
    group.extra.extend(extra_attrs(&body, KNOWN));
    let group = state.identity.update_group(&group, named_domain).await?;
    Ok(entity(
        StatusCode::OK,
        "group",
        render_group(&links, &group),
    ))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let group = find_group(&state, &path)
        .await?
        .ok_or_else(|| group_not_found(&path))?;
    let target = group_target(Some(&group)).arg("group_id", &path);
    caller.enforce("identity:delete_group", target)?;
    state.identity.delete_group(&group.id).await?;
    Ok(no_content())
}

/// GET /v3/groups/{group_id}/users, filtered by `domain_id`, `enabled` and `name`;
/// a domain-scoped caller sees only its domain's users.
pub async fn users(
    caller: Caller,
    path: web::Path<String>,
    query: Query<UserListQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorized_group(&caller, &state, &path, "identity:list_users_in_group").await?;
    let filter = user_filter(&query, caller.scoped_domain())?;
    let users = state.identity.list_users_in_group(&path, &filter).await?;
    let rendered = users
        .iter()
        .map(|u| super::users::render(&links, u))
        .collect();
    Ok(collection(&links, "users", rendered, None))
}

/// The membership rules see whichever of group and user exist.
async fn authorize_membership(
    caller: &Caller,
    state: &AppState,
    action: &str,
    group_id: &str,
    user_id: &str,
) -> ApiResult<()> {
    let group = find_group(state, group_id).await?;
    let user = state
        .identity
        .find_user(&UserRef::Id(user_id.to_string()))
        .await?;
    let target = group_target(group.as_ref())
        .with_found("user", user.map(|u| Value::Object(user_dict(&u))))
        .arg("group_id", group_id)
        .arg("user_id", user_id);
    caller.enforce(action, target)
}

/// GET/HEAD /v3/groups/{group_id}/users/{user_id}: 204 for a member, 404 otherwise.
pub async fn check_member(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (group_id, user_id) = path.into_inner();
    authorize_membership(
        &caller,
        &state,
        "identity:check_user_in_group",
        &group_id,
        &user_id,
    )
    .await?;
    state
        .identity
        .check_user_in_group(&user_id, &group_id)
        .await?;
    Ok(no_content())
}

pub async fn add_member(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (group_id, user_id) = path.into_inner();
    authorize_membership(
        &caller,
        &state,
        "identity:add_user_to_group",
        &group_id,
        &user_id,
    )
    .await?;
    state
        .identity
        .add_user_to_group(&user_id, &group_id)
        .await?;
    Ok(no_content())
}

/// Removing a member revokes the member's tokens (Keystone's `remove_user_from_group`).
pub async fn remove_member(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (group_id, user_id) = path.into_inner();
    authorize_membership(
        &caller,
        &state,
        "identity:remove_user_from_group",
        &group_id,
        &user_id,
    )
    .await?;
    state
        .identity
        .remove_user_from_group(&user_id, &group_id)
        .await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/groups").get(list).post(create))
        .add(
            resource("/v3/groups/{group_id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .add(resource("/v3/groups/{group_id}/users").get(users))
        .add(
            resource("/v3/groups/{group_id}/users/{user_id}")
                .get(check_member)
                .put(add_member)
                .delete(remove_member),
        );
}
