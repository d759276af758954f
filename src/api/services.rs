//! /v3/services. Policy first (the rules need no target), then lookups.
//!
//! In Keystone only `id`, `type` and `enabled` are service columns; `name`,
//! `description` and anything else live in `extra`. So `description` is shown
//! only when it was given, and may be any JSON value, as in Keystone.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::ApiResult;
use super::kit::input::{
    bool_attr, bounded_string, extra_attrs, non_empty, normalize_keys, require, require_same_id,
    JsonBody, TopLevel,
};
use super::kit::{
    collection, entity, no_content, resource, Caller, Links, QueryPairs, Router, Target,
};
use super::AppState;
use crate::model::{new_id, Service};

const KNOWN: &[&str] = &["id", "type", "name", "enabled", "links"];

pub fn render(links: &Links, s: &Service) -> Value {
    let mut m = Map::new();
    for (k, v) in &s.extra {
        m.insert(k.clone(), v.clone());
    }
    if !m.contains_key("description") && !s.description.is_empty() {
        m.insert("description".into(), json!(s.description));
    }
    m.insert("id".into(), json!(s.id));
    m.insert("type".into(), json!(s.service_type));
    m.insert("name".into(), json!(s.name));
    m.insert("enabled".into(), json!(s.enabled));
    m.insert("links".into(), links.entity("services", &s.id));
    Value::Object(m)
}

/// The description column mirrors a string `description` for SQL readers.
fn description_of(extra: &Map<String, Value>) -> String {
    extra
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Filters: `type`, `name` (exact).
pub async fn list(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_services", Target::none())?;
    let service_type = query.first("type").map(str::to_string);
    let name = query.first("name").map(str::to_string);
    let services = state
        .catalog
        .list_services(service_type.as_deref(), name.as_deref())
        .await?;
    let rendered = services.iter().map(|s| render(&links, s)).collect();
    Ok(collection(&links, "services", rendered, None))
}

pub async fn get(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_service", Target::none())?;
    let service = state.catalog.get_service(&path).await?;
    Ok(entity(StatusCode::OK, "service", render(&links, &service)))
}

/// `type` is required; the id is always generated (a body `id` is ignored, as
/// in Keystone); `name` defaults to `''` and `enabled` to true.
pub async fn create(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_service", Target::none())?;
    let body = normalize_keys(&json.entity("service", TopLevel::Open)?);
    require(&body, "type", "service")?;
    let service_type = bounded_string(&body, "type", false, 1, 255)?
        .flatten()
        .unwrap_or_default();
    let name = bounded_string(&body, "name", false, 1, 255)?
        .flatten()
        .unwrap_or_default();
    let enabled = bool_attr(&body, "enabled")?.unwrap_or(true);
    let extra = extra_attrs(&body, KNOWN);
    let service = Service {
        id: new_id(),
        service_type,
        name,
        description: description_of(&extra),
        enabled,
        extra,
    };
    let service = state.catalog.create_service(service).await?;
    Ok(entity(
        StatusCode::CREATED,
        "service",
        render(&links, &service),
    ))
}

pub async fn update(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_service", Target::none())?;
    let body = json.entity("service", TopLevel::Open)?;
    non_empty(&body, "service")?;
    let service_type = bounded_string(&body, "type", false, 1, 255)?.flatten();
    let name = bounded_string(&body, "name", false, 1, 255)?.flatten();
    let enabled = bool_attr(&body, "enabled")?;
    require_same_id(&body, &path)?;
    let mut service = state.catalog.get_service(&path).await?;
    if let Some(t) = service_type {
        service.service_type = t;
    }
    if let Some(n) = name {
        service.name = n;
    }
    if let Some(e) = enabled {
        service.enabled = e;
    }
    service.extra.extend(extra_attrs(&body, KNOWN));
    if service.extra.contains_key("description") {
        service.description = description_of(&service.extra);
    }
    let service = state.catalog.update_service(service).await?;
    Ok(entity(StatusCode::OK, "service", render(&links, &service)))
}

/// Deletes the service and its endpoints.
pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_service", Target::none())?;
    state.catalog.delete_service(&path).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/services").get(list).post(create)).add(
        resource("/v3/services/{service_id}")
            .get(get)
            .patch(update)
            .delete(delete),
    );
}
