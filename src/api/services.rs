//! /v3/services. Policy first (the rules need no target), then lookups.
//!
//! In Keystone only `id`, `type` and `enabled` are service columns; `name`,
//! `description` and anything else live in `extra`. So `description` is shown
//! only when it was given, and may be any JSON value, as in Keystone.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::catalog_input::{bounded_string, non_empty, require};
use super::common::normalize_keys;
use super::common::{
    authorize, bool_attr, collection_links, entity_body, entity_links, extra_attrs, new_id,
    query_value,
};
use super::error::{ApiError, ApiResult};
use super::{json_response, AppState};
use crate::model::Service;

const KNOWN: &[&str] = &["id", "type", "name", "enabled", "links"];

pub fn render(req: &HttpRequest, state: &AppState, s: &Service) -> Value {
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
    m.insert("links".into(), entity_links(req, state, "services", &s.id));
    Value::Object(m)
}

fn one(req: &HttpRequest, state: &AppState, status: StatusCode, s: &Service) -> HttpResponse {
    json_response(status, &json!({"service": render(req, state, s)}))
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
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:list_services", json!({})).await?;
    let service_type = query_value(&req, "type");
    let name = query_value(&req, "name");
    let services = state
        .catalog
        .list_services(service_type.as_deref(), name.as_deref())
        .await?;
    let rendered: Vec<Value> = services.iter().map(|s| render(&req, &state, s)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"services": rendered, "links": collection_links(&req, &state)}),
    ))
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:get_service", json!({})).await?;
    let service = state.catalog.get_service(&path).await?;
    Ok(one(&req, &state, StatusCode::OK, &service))
}

/// `type` is required; the id is always generated (a body `id` is ignored, as
/// in Keystone); `name` defaults to `''` and `enabled` to true.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:create_service", json!({})).await?;
    let body = normalize_keys(&entity_body(&req, payload, &state, "service").await?);
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
    Ok(one(&req, &state, StatusCode::CREATED, &service))
}

/// Keystone's `_require_matching_id`: an `id` other than the URL's is a 400.
pub fn require_matching_id(body: &Map<String, Value>, id: &str) -> ApiResult<()> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(_) => Err(ApiError::BadRequest("Cannot change ID".into())),
    }
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:update_service", json!({})).await?;
    let body = entity_body(&req, payload, &state, "service").await?;
    non_empty(&body, "service")?;
    let service_type = bounded_string(&body, "type", false, 1, 255)?.flatten();
    let name = bounded_string(&body, "name", false, 1, 255)?.flatten();
    let enabled = bool_attr(&body, "enabled")?;
    require_matching_id(&body, &path)?;
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
    Ok(one(&req, &state, StatusCode::OK, &service))
}

/// Deletes the service and its endpoints.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:delete_service", json!({})).await?;
    state.catalog.delete_service(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/services")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v3/services/{service_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
