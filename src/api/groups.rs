//! /v3/groups and group membership: Keystone's `keystone/api/groups.py`.
//!
//! As in Keystone, GET/PATCH and the membership routes enforce with whatever of the
//! group and user exists (a caller without rights cannot probe ids), while DELETE
//! loads the group first and answers 404 before policy.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::common::normalize_keys;
use super::common::{
    caller, collection_links, enforce_with_args, extra_attrs, invalid, name_attr, new_id,
    query_value, string_attr,
};
use super::error::{ApiError, ApiResult};
use super::users::{
    description_attr, group_dict, id_string_attr, inexact_match, render_group, strict_entity_body,
    token_domain, user_collection, user_dict, user_filter,
};
use super::{json_response, method_not_allowed, AppState};
use crate::error::Error;
use crate::identity::UserRef;
use crate::model::{Group, GroupFilter};

const KNOWN: &[&str] = &["id", "name", "domain_id", "description", "links"];

/// Keystone's `_identity_name` limit for group names.
const NAME_MAX: usize = 255;

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

fn group_target(group: Option<&Group>) -> Value {
    match group {
        Some(g) => json!({ "group": group_dict(g) }),
        None => json!({}),
    }
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let domain = token_domain(&caller);
    let target = match &domain {
        Some(d) => json!({ "group": { "domain_id": d } }),
        None => json!({}),
    };
    enforce_with_args(&state, &caller, "identity:list_groups", target, &[])?;
    let filter = GroupFilter {
        domain_id: query_value(&req, "domain_id"),
        name: query_value(&req, "name"),
    };
    let rendered: Vec<Value> = state
        .identity
        .list_groups(&filter)
        .await?
        .iter()
        .filter(|g| domain.as_ref().is_none_or(|d| &g.domain_id == d))
        .filter(|g| inexact_match(&req, "name", &g.name))
        .map(|g| render_group(&req, &state, g))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"groups": rendered, "links": collection_links(&req, &state)}),
    ))
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let group = find_group(&state, &path).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:get_group",
        group_target(group.as_ref()),
        &[("group_id", &path)],
    )?;
    let group = group.ok_or_else(|| group_not_found(&path))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"group": render_group(&req, &state, &group)}),
    ))
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let raw = strict_entity_body(&req, payload, &state, "group").await?;
    let body = normalize_keys(&raw);
    let name = name_attr(&body, "name", NAME_MAX)?
        .ok_or_else(|| invalid("group", "'name' is a required property"))?;
    let domain_id = id_string_attr(&body, "domain_id", false)?.flatten();
    let description = description_attr(&body)?.flatten().unwrap_or_default();
    // Enforced on the body as sent, before the domain is filled in (Keystone).
    enforce_with_args(
        &state,
        &caller,
        "identity:create_group",
        json!({ "group": raw }),
        &[],
    )?;
    let domain_id = domain_id.unwrap_or_else(|| {
        token_domain(&caller).unwrap_or_else(|| state.settings.identity.default_domain_id.clone())
    });
    let group = Group {
        id: new_id(),
        name,
        domain_id,
        description,
        extra: extra_attrs(&body, KNOWN),
    };
    let group = state.identity.create_group(group).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"group": render_group(&req, &state, &group)}),
    ))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let found = find_group(&state, &path).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:update_group",
        group_target(found.as_ref()),
        &[("group_id", &path)],
    )?;
    let body = strict_entity_body(&req, payload, &state, "group").await?;
    if body.is_empty() {
        return Err(invalid("group", "{} does not have enough properties"));
    }
    let name = name_attr(&body, "name", NAME_MAX)?;
    let description = description_attr(&body)?;
    let id = string_attr(&body, "id", true)?;
    let domain_id = string_attr(&body, "domain_id", true)?;
    let mut group = found.ok_or_else(|| group_not_found(&path))?;
    if let Some(Some(id)) = id {
        if id != group.id {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    let named_domain = match domain_id {
        Some(d) if d.as_deref() != Some(group.domain_id.as_str()) => {
            return Err(ApiError::BadRequest("Cannot change Domain ID".into()))
        }
        Some(_) => true,
        None => false,
    };
    if let Some(name) = name {
        group.name = name;
    }
    if let Some(d) = description {
        group.description = d.unwrap_or_default();
    }
    group.extra.extend(extra_attrs(&body, KNOWN));
    let group = state.identity.update_group(&group, named_domain).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"group": render_group(&req, &state, &group)}),
    ))
}

pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let group = find_group(&state, &path)
        .await?
        .ok_or_else(|| group_not_found(&path))?;
    enforce_with_args(
        &state,
        &caller,
        "identity:delete_group",
        group_target(Some(&group)),
        &[("group_id", &path)],
    )?;
    state.identity.delete_group(&group.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GET /v3/groups/{group_id}/users, filtered by `domain_id`, `enabled` and `name`;
/// a domain-scoped caller sees only its domain's users.
pub async fn users(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let group = find_group(&state, &path).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:list_users_in_group",
        group_target(group.as_ref()),
        &[("group_id", &path)],
    )?;
    let users = state
        .identity
        .list_users_in_group(&path, &user_filter(&req))
        .await?;
    let domain = token_domain(&caller);
    user_collection(&req, &state, users, domain.as_deref())
}

/// The target of the membership rules: whichever of group and user exist.
async fn membership_target(state: &AppState, group_id: &str, user_id: &str) -> ApiResult<Value> {
    let mut target = serde_json::Map::new();
    if let Some(g) = find_group(state, group_id).await? {
        target.insert("group".into(), Value::Object(group_dict(&g)));
    }
    if let Some(u) = state
        .identity
        .find_user(&UserRef::Id(user_id.to_string()))
        .await?
    {
        target.insert("user".into(), Value::Object(user_dict(&u)));
    }
    Ok(Value::Object(target))
}

async fn authorize_membership(
    req: &HttpRequest,
    state: &AppState,
    action: &str,
    group_id: &str,
    user_id: &str,
) -> ApiResult<()> {
    let caller = caller(req, state).await?;
    let target = membership_target(state, group_id, user_id).await?;
    enforce_with_args(
        state,
        &caller,
        action,
        target,
        &[("group_id", group_id), ("user_id", user_id)],
    )
}

/// GET/HEAD /v3/groups/{group_id}/users/{user_id}: 204 for a member, 404 otherwise.
pub async fn check_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (group_id, user_id) = path.into_inner();
    authorize_membership(
        &req,
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
    Ok(HttpResponse::NoContent().finish())
}

pub async fn add_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (group_id, user_id) = path.into_inner();
    authorize_membership(
        &req,
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
    Ok(HttpResponse::NoContent().finish())
}

/// Removing a member revokes the member's tokens (Keystone's `remove_user_from_group`).
pub async fn remove_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (group_id, user_id) = path.into_inner();
    authorize_membership(
        &req,
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
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/groups")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/groups/{group_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/groups/{group_id}/users")
            .route(web::get().to(users))
            .route(web::head().to(users))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/groups/{group_id}/users/{user_id}")
            .route(web::get().to(check_member))
            .route(web::head().to(check_member))
            .route(web::put().to(add_member))
            .route(web::delete().to(remove_member))
            .default_service(web::to(method_not_allowed)),
    );
}
