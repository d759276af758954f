//! /v3/domains — the reference shape for every management resource:
//! authorize (with the entity as policy target) -> service -> render.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::common::{
    authorize, bool_attr, bool_filter, caller, collection_links, enforce, entity_body,
    entity_links, extra_attrs, forbid, invalid, name_attr, new_id, query_value, string_attr,
};
use super::error::ApiResult;
use super::{json_response, AppState};
use crate::model::Domain;

const KNOWN: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "tags",
    "options",
    "explicit_domain_id",
    "links",
];

pub fn render(req: &HttpRequest, state: &AppState, d: &Domain) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(d.id));
    m.insert("name".into(), json!(d.name));
    m.insert("description".into(), json!(d.description));
    m.insert("enabled".into(), json!(d.enabled));
    m.insert("tags".into(), json!([]));
    m.insert("options".into(), json!({}));
    for (k, v) in &d.extra {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    m.insert("links".into(), entity_links(req, state, "domains", &d.id));
    Value::Object(m)
}

/// Authenticates (401), loads the domain (404), enforces `action` on it (403).
async fn authorized(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    action: &str,
) -> ApiResult<Domain> {
    let caller = caller(req, state).await?;
    let domain = state.resource.get_domain(id).await?;
    enforce(state, &caller, action, json!({"domain": {"id": domain.id}}))?;
    Ok(domain)
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:list_domains", json!({})).await?;
    let name = query_value(&req, "name");
    let domains = state
        .resource
        .list_domains(name.as_deref(), bool_filter(&req, "enabled"))
        .await?;
    let rendered: Vec<Value> = domains.iter().map(|d| render(&req, &state, d)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"domains": rendered, "links": collection_links(&req, &state)}),
    ))
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain = authorized(&req, &state, &path, "identity:get_domain").await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"domain": render(&req, &state, &domain)}),
    ))
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:create_domain", json!({})).await?;
    let body = entity_body(&req, payload, &state, "domain").await?;
    let name = name_attr(&body, "name", 64)?
        .ok_or_else(|| invalid("domain", "'name' is a required property"))?;
    let id = match string_attr(&body, "explicit_domain_id", false)? {
        Some(Some(id)) => id,
        _ => new_id(),
    };
    let domain = Domain {
        id,
        name,
        description: string_attr(&body, "description", true)?
            .flatten()
            .unwrap_or_default(),
        enabled: bool_attr(&body, "enabled")?.unwrap_or(true),
        extra: extra_attrs(&body, KNOWN),
    };
    let domain = state.resource.create_domain(domain).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"domain": render(&req, &state, &domain)}),
    ))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let mut domain = authorized(&req, &state, &path, "identity:update_domain").await?;
    let body = entity_body(&req, payload, &state, "domain").await?;
    forbid(&body, &["id"])?;
    if let Some(name) = name_attr(&body, "name", 64)? {
        domain.name = name;
    }
    if let Some(description) = string_attr(&body, "description", true)? {
        domain.description = description.unwrap_or_default();
    }
    if let Some(enabled) = bool_attr(&body, "enabled")? {
        domain.enabled = enabled;
    }
    domain.extra.extend(extra_attrs(&body, KNOWN));
    let domain = state.resource.update_domain(domain).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"domain": render(&req, &state, &domain)}),
    ))
}

pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain = authorized(&req, &state, &path, "identity:delete_domain").await?;
    state.resource.delete_domain(&domain.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/domains")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v3/domains/{domain_id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
