//! Plumbing every resource handler shares: authorize, read the body, validate
//! attributes the way Keystone's JSON schemas do, and build `links`.

use std::sync::Arc;

use actix_web::{web, HttpRequest};
use serde_json::{json, Map, Value};

use super::body::json_object;
use super::context::{credentials, Caller};
use super::error::{ApiError, ApiResult};
use super::{base_url, AppState};
use crate::error::Error;
use crate::token::provider::Token;

/// The validated caller, or 401. Handlers call this before looking up the target so
/// an anonymous client cannot probe which ids exist (Keystone's order: 401, 404, 403).
pub async fn caller(req: &HttpRequest, state: &AppState) -> ApiResult<Arc<Token>> {
    Ok(Caller::from_request(req, state).await?.require()?.clone())
}

/// Validates the caller (401), then enforces `action` on `target` (403).
/// `target` is the object the rule's `%(target.x)s` substitutions read, without the
/// `target` wrapper (e.g. `{"user": {...}}`).
pub async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    action: &str,
    target: Value,
) -> ApiResult<Arc<Token>> {
    let caller = Caller::from_request(req, state).await?;
    let token = caller.require()?.clone();
    enforce(state, &token, action, target)?;
    Ok(token)
}

/// Policy check for an already validated caller.
pub fn enforce(state: &AppState, caller: &Token, action: &str, target: Value) -> ApiResult<()> {
    state
        .policy
        .enforce(action, &credentials(caller), &json!({ "target": target }))
        .map_err(|_| {
            ApiError::Service(Error::PolicyForbidden {
                action: action.to_string(),
            })
        })
}

/// `enforce`, with the URL's path values beside `target` at the top level, as
/// Keystone's `enforce_call` adds its view args: rules such as
/// `identity:list_groups_for_user` (and operators' `rule:owner` overrides) read
/// `%(user_id)s` from there.
pub fn enforce_with_args(
    state: &AppState,
    caller: &Token,
    action: &str,
    target: Value,
    args: &[(&str, &str)],
) -> ApiResult<()> {
    let mut dict: Map<String, Value> = args
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    dict.insert("target".into(), target);
    state
        .policy
        .enforce(action, &credentials(caller), &Value::Object(dict))
        .map_err(|_| {
            ApiError::Service(Error::PolicyForbidden {
                action: action.to_string(),
            })
        })
}

/// The query string as (name, value) pairs, decoded.
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

pub fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    query_pairs(req)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `{"self": <url as requested>, "next": null, "previous": null}` for collections.
pub fn collection_links(req: &HttpRequest, state: &AppState) -> Value {
    let base = base_url(req, &state.settings);
    let query = req.query_string();
    let url = if query.is_empty() {
        format!("{base}{}", req.path())
    } else {
        format!("{base}{}?{query}", req.path())
    };
    json!({"next": null, "self": url, "previous": null})
}

/// `{"self": "<base>/v3/<collection>/<id>"}`.
pub fn entity_links(req: &HttpRequest, state: &AppState, collection: &str, id: &str) -> Value {
    json!({"self": format!("{}/v3/{collection}/{id}", base_url(req, &state.settings))})
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Reads `{"<key>": {...}}` from the body and returns the inner object.
pub async fn entity_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    key: &str,
) -> ApiResult<Map<String, Value>> {
    let mut body = json_object(req, payload, state.settings.server.max_request_body_size).await?;
    match body.remove(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(invalid(key, &format!("{other} is not of type 'object'"))),
        None => Err(invalid(key, &format!("'{key}' is a required property"))),
    }
}

/// Keystone's schema-violation message.
pub fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!("Invalid input for field '{field}': {problem}"))
}

/// Keystone's `parameter_types.name`: a non-blank string of at most `max` characters.
pub fn name_attr(obj: &Map<String, Value>, field: &str, max: usize) -> ApiResult<Option<String>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                Err(invalid(field, &format!("'{s}' does not match '[\\S]+'")))
            } else if s.chars().count() > max {
                Err(invalid(field, &format!("'{s}' is too long")))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(other) => Err(invalid(field, &format!("{other} is not of type 'string'"))),
    }
}

/// An optional string attribute (null allowed where `nullable`).
pub fn string_attr(
    obj: &Map<String, Value>,
    field: &str,
    nullable: bool,
) -> ApiResult<Option<Option<String>>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(other) => Err(invalid(field, &format!("{other} is not of type 'string'"))),
    }
}

/// An optional boolean attribute; Keystone's schemas accept JSON booleans only.
pub fn bool_attr(obj: &Map<String, Value>, field: &str) -> ApiResult<Option<bool>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(field, &format!("{other} is not of type 'boolean'"))),
    }
}

/// Attributes not in `known` are kept as Keystone's free-form `extra`.
pub fn extra_attrs(obj: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    obj.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Rejects attributes Keystone's schema forbids on update (e.g. `id`).
pub fn forbid(obj: &Map<String, Value>, fields: &[&str]) -> ApiResult<()> {
    for f in fields {
        if obj.contains_key(*f) {
            return Err(invalid(
                f,
                &format!("Additional properties are not allowed ('{f}' was unexpected)"),
            ));
        }
    }
    Ok(())
}

/// `enabled=<bool>` list filters, parsed as oslo does.
pub fn bool_filter(req: &HttpRequest, name: &str) -> Option<bool> {
    query_value(req, name).map(|v| super::auth_tokens::truthy(&v))
}

/// Keystone's 409 text.
pub fn duplicate(entity: &str, name: &str) -> ApiError {
    ApiError::Service(Error::Conflict {
        what: format!("{entity} - Duplicate entry found with name {name}."),
    })
}

/// Keystone's `_normalize_dict` on create: `domain-id` and `domain:id` mean `domain_id`.
pub fn normalize_keys(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v.clone()))
        .collect()
}
