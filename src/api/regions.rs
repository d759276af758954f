//! /v3/regions. Keystone enforces these rules without a target, so policy
//! comes before any lookup: 401, 403, then 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    bounded_string, closed_query, extra_attrs, invalid_query, non_empty, normalize_keys, JsonBody,
    TopLevel,
};
use super::kit::{
    collection, entity, no_content, resource, Caller, Links, QueryPairs, Router, Target,
};
use super::AppState;
use crate::catalog::RegionPatch;
use crate::model::{new_id, Region};

const KNOWN: &[&str] = &["id", "description", "parent_region_id", "links"];

pub fn render(links: &Links, r: &Region) -> Value {
    let mut m = Map::new();
    for (k, v) in &r.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(r.id));
    m.insert("description".into(), json!(r.description));
    m.insert("parent_region_id".into(), json!(r.parent_region_id));
    m.insert("links".into(), links.entity("regions", &r.id));
    Value::Object(m)
}

pub async fn list(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_regions", Target::none())?;
    closed_query(&query, &["parent_region_id"])?;
    let parent = query.first("parent_region_id").map(str::to_string);
    if parent.as_deref() == Some("") {
        return Err(invalid_query("parent_region_id", "", "'' is too short"));
    }
    let regions = state.catalog.list_regions(parent.as_deref()).await?;
    let rendered = regions.iter().map(|r| render(&links, r)).collect();
    Ok(collection(&links, "regions", rendered, None))
}

pub async fn get(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_region", Target::none())?;
    let region = state.catalog.get_region(&path).await?;
    Ok(entity(StatusCode::OK, "region", render(&links, &region)))
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
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_region", Target::none())?;
    let body = json.entity("region", TopLevel::Open)?;
    let (id, mut region) = parse_new(body)?;
    region.id = id
        .flatten()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(new_id);
    let region = state.catalog.create_region(region).await?;
    Ok(entity(
        StatusCode::CREATED,
        "region",
        render(&links, &region),
    ))
}

/// PUT /v3/regions/{id}: create with the id from the URL (201); a different
/// `id` in the body is a 400, an existing region a 409.
pub async fn create_with_id(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_region", Target::none())?;
    let body = json.entity("region", TopLevel::Open)?;
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
    Ok(entity(
        StatusCode::CREATED,
        "region",
        render(&links, &region),
    ))
}

pub async fn update(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_region", Target::none())?;
    let body = json.entity("region", TopLevel::Open)?;
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
    Ok(entity(StatusCode::OK, "region", render(&links, &region)))
}

/// Deletes the region and its child regions, unless any has endpoints (403).
pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_region", Target::none())?;
    state.catalog.delete_region(&path).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/regions").get(list).post(create)).add(
        resource("/v3/regions/{region_id}")
            .get(get)
            .put(create_with_id)
            .patch(update)
            .delete(delete),
    );
}
