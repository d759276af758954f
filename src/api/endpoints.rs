//! /v3/endpoints. Policy first (the rules need no target), then lookups.
//! An unknown `region_id` or `service_id` in a body is Keystone's 400
//! ("Expecting to find endpoint region_id in region table"), not a 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::catalog_input::{
    bounded_string, interface_attr, invalid_query, non_empty, query_param, require, url_attr,
    INTERFACES,
};
use super::common::normalize_keys;
use super::common::{
    authorize, bool_attr, collection_links, entity_body, entity_links, extra_attrs, new_id,
};
use super::error::{ApiError, ApiResult};
use super::services::require_matching_id;
use super::{json_response, AppState};
use crate::catalog::{url::valid_endpoint_url, EndpointFilters, EndpointPatch};
use crate::model::Endpoint;

const KNOWN: &[&str] = &[
    "id",
    "interface",
    "region_id",
    "region",
    "service_id",
    "url",
    "enabled",
    "links",
    "legacy_endpoint_id",
];

/// Keystone's `_filter_endpoint`: `region` repeats `region_id`.
pub fn render(req: &HttpRequest, state: &AppState, e: &Endpoint) -> Value {
    let mut m = Map::new();
    for (k, v) in &e.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(e.id));
    m.insert("interface".into(), json!(e.interface));
    m.insert("region_id".into(), json!(e.region_id));
    m.insert("service_id".into(), json!(e.service_id));
    m.insert("url".into(), json!(e.url));
    m.insert("enabled".into(), json!(e.enabled));
    m.insert("region".into(), json!(e.region_id));
    m.insert("links".into(), entity_links(req, state, "endpoints", &e.id));
    Value::Object(m)
}

fn one(req: &HttpRequest, state: &AppState, status: StatusCode, e: &Endpoint) -> HttpResponse {
    json_response(status, &json!({"endpoint": render(req, state, e)}))
}

/// `{"endpoints": [...], "links": {...}}` for any list of endpoints.
pub fn collection(req: &HttpRequest, state: &AppState, endpoints: &[Endpoint]) -> HttpResponse {
    let rendered: Vec<Value> = endpoints.iter().map(|e| render(req, state, e)).collect();
    json_response(
        StatusCode::OK,
        &json!({"endpoints": rendered, "links": collection_links(req, state)}),
    )
}

/// Filters: `interface` (must be a known interface), `service_id`, `region_id`.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:list_endpoints", json!({})).await?;
    let interface = query_param(&req, "interface");
    if let Some(i) = &interface {
        if !INTERFACES.contains(&i.as_str()) {
            return Err(invalid_query(
                "interface",
                i,
                &format!("'{i}' is not one of ['admin', 'internal', 'public']"),
            ));
        }
    }
    let filters = EndpointFilters {
        interface,
        service_id: query_param(&req, "service_id"),
        region_id: query_param(&req, "region_id"),
    };
    let endpoints = state.catalog.list_endpoints(&filters).await?;
    Ok(collection(&req, &state, &endpoints))
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:get_endpoint", json!({})).await?;
    let endpoint = state.catalog.get_endpoint(&path).await?;
    Ok(one(&req, &state, StatusCode::OK, &endpoint))
}

/// The attributes both schemas type-check.
struct Parsed {
    interface: Option<String>,
    service_id: Option<String>,
    url: Option<String>,
    region_id: Option<Option<String>>,
    legacy_region: Option<String>,
    enabled: Option<bool>,
    extra: Map<String, Value>,
}

fn parse(body: &Map<String, Value>) -> ApiResult<Parsed> {
    let max = usize::MAX;
    bounded_string(body, "name", false, 0, max)?;
    bounded_string(body, "description", true, 0, max)?;
    Ok(Parsed {
        interface: interface_attr(body)?,
        service_id: bounded_string(body, "service_id", false, 0, max)?.flatten(),
        url: url_attr(body)?,
        region_id: bounded_string(body, "region_id", true, 0, max)?,
        legacy_region: bounded_string(body, "region", true, 0, max)?.flatten(),
        enabled: bool_attr(body, "enabled")?,
        extra: extra_attrs(body, KNOWN),
    })
}

/// `interface`, `service_id` and `url` are required; the URL's `$(...)s`
/// templates must use Keystone's whitelisted keys (400 otherwise). The id is
/// always generated, as in Keystone.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:create_endpoint", json!({})).await?;
    let body = normalize_keys(&entity_body(&req, payload, &state, "endpoint").await?);
    for field in ["interface", "service_id", "url"] {
        require(&body, field, "endpoint")?;
    }
    bounded_string(&body, "id", false, 0, usize::MAX)?;
    let p = parse(&body)?;
    let url = p.url.unwrap_or_default();
    if !valid_endpoint_url(&url) {
        return Err(ApiError::BadRequest(format!(
            "Cannot create an endpoint with an invalid URL: {url}."
        )));
    }
    let endpoint = Endpoint {
        id: new_id(),
        service_id: p.service_id.unwrap_or_default(),
        interface: p.interface.unwrap_or_default(),
        url,
        region_id: p.region_id.flatten(),
        enabled: p.enabled.unwrap_or(true),
        extra: p.extra,
    };
    let endpoint = state
        .catalog
        .create_endpoint(endpoint, p.legacy_region)
        .await?;
    Ok(one(&req, &state, StatusCode::CREATED, &endpoint))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:update_endpoint", json!({})).await?;
    let body = entity_body(&req, payload, &state, "endpoint").await?;
    non_empty(&body, "endpoint")?;
    let p = parse(&body)?;
    require_matching_id(&body, &path)?;
    let patch = EndpointPatch {
        interface: p.interface,
        service_id: p.service_id,
        url: p.url,
        region_id: p.region_id,
        legacy_region: p.legacy_region,
        enabled: p.enabled,
        extra: p.extra,
    };
    let endpoint = state.catalog.update_endpoint(&path, patch).await?;
    Ok(one(&req, &state, StatusCode::OK, &endpoint))
}

/// Deletes the endpoint and its project associations.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:delete_endpoint", json!({})).await?;
    state.catalog.delete_endpoint(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/endpoints")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v3/endpoints/{endpoint_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
