//! /v3/regions. Keystone enforces these rules without a target, so policy
//! comes before any lookup: 401, 403, then 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::catalog_input::{bounded_string, closed_query, invalid_query, non_empty, query_param};
use super::common::normalize_keys;
use super::common::{authorize, collection_links, entity_body, entity_links, extra_attrs, new_id};
use super::error::{ApiError, ApiResult};
use super::{json_response, AppState};
use crate::catalog::RegionPatch;
use crate::model::Region;

const KNOWN: &[&str] = &["id", "description", "parent_region_id", "links"];

pub fn render(req: &HttpRequest, state: &AppState, r: &Region) -> Value {
    let mut m = Map::new();
    for (k, v) in &r.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(r.id));
    m.insert("description".into(), json!(r.description));
    m.insert("parent_region_id".into(), json!(r.parent_region_id));
    m.insert("links".into(), entity_links(req, state, "regions", &r.id));
    Value::Object(m)
}

fn one(req: &HttpRequest, state: &AppState, status: StatusCode, r: &Region) -> HttpResponse {
    json_response(status, &json!({"region": render(req, state, r)}))
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:list_regions", json!({})).await?;
    closed_query(&req, &["parent_region_id"])?;
    let parent = query_param(&req, "parent_region_id");
    if parent.as_deref() == Some("") {
        return Err(invalid_query("parent_region_id", "", "'' is too short"));
    }
    let regions = state.catalog.list_regions(parent.as_deref()).await?;
    let rendered: Vec<Value> = regions.iter().map(|r| render(&req, &state, r)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"regions": rendered, "links": collection_links(&req, &state)}),
    ))
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:get_region", json!({})).await?;
    let region = state.catalog.get_region(&path).await?;
    Ok(one(&req, &state, StatusCode::OK, &region))
}

/// The create schema: every attribute optional; `id` may be empty (POST then
/// generates one).
fn parse_new(body: Map<String, Value>) -> ApiResult<(Option<Option<String>>, Region)> {
    let body = normalize_keys(&body);
    let id = bounded_string(&body, "id", true, 0, 255)?;
    let description = bounded_string(&body, "description", true, 0, 255)?;
    let parent = bounded_string(&body, "parent_region_id", true, 1, 255)?;
    let region = Region {
        id: String::new(),
        description: description.flatten().unwrap_or_default(),
        parent_region_id: parent.flatten(),
        extra: extra_attrs(&body, KNOWN),
    };
    Ok((id, region))
}

/// POST /v3/regions: the body's `id` is kept when given, else generated.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:create_region", json!({})).await?;
    let body = entity_body(&req, payload, &state, "region").await?;
    let (id, mut region) = parse_new(body)?;
    region.id = id
        .flatten()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(new_id);
    let region = state.catalog.create_region(region).await?;
    Ok(one(&req, &state, StatusCode::CREATED, &region))
}

/// PUT /v3/regions/{id}: create with the id from the URL (201); a different
/// `id` in the body is a 400, an existing region a 409.
pub async fn create_with_id(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:create_region", json!({})).await?;
    let body = entity_body(&req, payload, &state, "region").await?;
    let (id, mut region) = parse_new(body)?;
    let url_id = path.into_inner();
    if let Some(body_id) = id {
        if body_id.as_deref() != Some(url_id.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Conflicting region IDs specified: \"{url_id}\" != \"{}\"",
                body_id.as_deref().unwrap_or("None")
            )));
        }
    }
    region.id = url_id;
    let region = state.catalog.create_region(region).await?;
    Ok(one(&req, &state, StatusCode::CREATED, &region))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:update_region", json!({})).await?;
    let body = entity_body(&req, payload, &state, "region").await?;
    non_empty(&body, "region")?;
    if let Some(id) = bounded_string(&body, "id", true, 1, 255)?.flatten() {
        if id != *path {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    let patch = RegionPatch {
        description: bounded_string(&body, "description", true, 0, 255)?,
        parent_region_id: bounded_string(&body, "parent_region_id", true, 1, 255)?,
        extra: extra_attrs(&body, KNOWN),
    };
    let region = state.catalog.update_region(&path, patch).await?;
    Ok(one(&req, &state, StatusCode::OK, &region))
}

/// Deletes the region and its child regions, unless any has endpoints (403).
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:delete_region", json!({})).await?;
    state.catalog.delete_region(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/regions")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v3/regions/{region_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::put().to(create_with_id))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
