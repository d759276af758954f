//! /v3/policies (`keystone/api/policy.py`): stored policy blobs. Keystone enforces
//! before it validates the body, so a caller without the role gets 403 even for a
//! malformed request.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{bounded_string, extra_attrs, normalize_keys, JsonBody};
use super::kit::{
    collection, entity, no_content, resource, Caller, Links, QueryPairs, Router, Target,
};
use super::AppState;
use crate::error::Error;
use crate::model::{new_id, StoredPolicy};
use crate::policies::PolicyPatch;

const KNOWN: &[&str] = &["id", "blob", "type", "links"];

/// Keystone's `PolicyModel.to_dict()` with its links: extra attributes, then the columns.
pub fn render(links: &Links, p: &StoredPolicy) -> Value {
    let mut m = Map::new();
    for (k, v) in &p.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(p.id));
    m.insert("blob".into(), json!(p.blob));
    m.insert("type".into(), json!(p.policy_type));
    m.insert("links".into(), links.entity("policies", &p.id));
    Value::Object(m)
}

/// `request_body_json.get('policy', {})`, which the schema then wants to be an object.
fn policy_body(json: JsonBody) -> ApiResult<Map<String, Value>> {
    match json.0.get("policy") {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{other} is not of type 'object'"
        ))),
    }
}

/// `_policy_properties`: `blob` a string, `type` a string of at most 255 characters.
fn checked_attrs(body: &Map<String, Value>) -> ApiResult<(Option<String>, Option<String>)> {
    let blob = bounded_string(body, "blob", false, 0, usize::MAX)?.flatten();
    let policy_type = bounded_string(body, "type", false, 0, 255)?.flatten();
    Ok((blob, policy_type))
}

pub async fn list(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_policies", Target::none())?;
    let shown = state
        .policies
        .list(query.first("type"))
        .await?
        .iter()
        .map(|p| render(&links, p))
        .collect();
    Ok(collection(&links, "policies", shown, None))
}

pub async fn create(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_policy", Target::none())?;
    let body = policy_body(json)?;
    let (blob, policy_type) = checked_attrs(&body)?;
    let (Some(blob), Some(policy_type)) = (blob, policy_type) else {
        let missing = if body.contains_key("blob") {
            "type"
        } else {
            "blob"
        };
        return Err(ApiError::BadRequest(format!(
            "'{missing}' is a required property"
        )));
    };
    let normalized = normalize_keys(&body);
    let created = state
        .policies
        .create(StoredPolicy {
            id: new_id(),
            policy_type,
            blob,
            extra: extra_attrs(&normalized, KNOWN),
        })
        .await?;
    Ok(entity(
        StatusCode::CREATED,
        "policy",
        render(&links, &created),
    ))
}

pub async fn get(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_policy", Target::none())?;
    let p = state.policies.get(&path).await?;
    Ok(entity(StatusCode::OK, "policy", render(&links, &p)))
}

pub async fn update(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_policy", Target::none())?;
    let body = policy_body(json)?;
    let (blob, policy_type) = checked_attrs(&body)?;
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "{} does not have enough properties".into(),
        ));
    }
    if body
        .get("id")
        .is_some_and(|id| id.as_str() != Some(path.as_str()))
    {
        return Err(Error::validation("Cannot change policy ID").into());
    }
    let updated = state
        .policies
        .update(
            &path,
            PolicyPatch {
                policy_type,
                blob,
                extra: extra_attrs(&body, KNOWN),
            },
        )
        .await?;
    Ok(entity(StatusCode::OK, "policy", render(&links, &updated)))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_policy", Target::none())?;
    state.policies.delete(&path).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/policies").get(list).post(create)).add(
        resource("/v3/policies/{policy_id}")
            .get(get)
            .patch(update)
            .delete(delete),
    );
}
