//! /v3/endpoints. Policy first (the rules need no target), then lookups.
//! An unknown `region_id` or `service_id` in a body is Keystone's 400
//! ("Expecting to find endpoint region_id in region table"), not a 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    bool_attr, bounded_string, extra_attrs, interface_attr, invalid_query, non_empty,
    normalize_keys, require, require_same_id, url_attr, JsonBody, TopLevel, INTERFACES,
};
use super::kit::{
    collection, entity, no_content, resource, Caller, Links, QueryPairs, Router, Target,
};
use super::AppState;
use crate::catalog::{url::valid_endpoint_url, EndpointFilters, EndpointPatch};
use crate::model::{new_id, Endpoint};

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
pub fn render(links: &Links, e: &Endpoint) -> Value {
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
    m.insert("links".into(), links.entity("endpoints", &e.id));
    Value::Object(m)
}

/// `{"endpoints": [...], "links": {...}}` for any list of endpoints.
pub fn endpoint_collection(links: &Links, endpoints: &[Endpoint]) -> HttpResponse {
    let rendered = endpoints.iter().map(|e| render(links, e)).collect();
    collection(links, "endpoints", rendered, None)
}

/// Filters: `interface` (must be a known interface), `service_id`, `region_id`.
pub async fn list(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_endpoints", Target::none())?;
    let interface = query.first("interface").map(str::to_string);
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
        service_id: query.first("service_id").map(str::to_string),
        region_id: query.first("region_id").map(str::to_string),
    };
    let endpoints = state.catalog.list_endpoints(&filters).await?;
    Ok(endpoint_collection(&links, &endpoints))
}

pub async fn get(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_endpoint", Target::none())?;
    let endpoint = state.catalog.get_endpoint(&path).await?;
    Ok(entity(
        StatusCode::OK,
        "endpoint",
        render(&links, &endpoint),
    ))
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
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_endpoint", Target::none())?;
    let body = normalize_keys(&json.entity("endpoint", TopLevel::Open)?);
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
    Ok(entity(
        StatusCode::CREATED,
        "endpoint",
        render(&links, &endpoint),
    ))
}

pub async fn update(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_endpoint", Target::none())?;
    let body = json.entity("endpoint", TopLevel::Open)?;
    non_empty(&body, "endpoint")?;
    let p = parse(&body)?;
    require_same_id(&body, &path)?;
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
    Ok(entity(
        StatusCode::OK,
        "endpoint",
        render(&links, &endpoint),
    ))
}

/// Deletes the endpoint and its project associations.
pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_endpoint", Target::none())?;
    state.catalog.delete_endpoint(&path).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/endpoints").get(list).post(create)).add(
        resource("/v3/endpoints/{endpoint_id}")
            .get(get)
            .patch(update)
            .delete(delete),
    );
}
