//! /v3/OS-EP-FILTER: project <-> endpoint associations and endpoint groups
//! (Keystone's `keystone/api/os_ep_filter.py`). Every rule is enforced without
//! a target, before any lookup: 401, 403, then 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::catalog_input::{
    bounded_string, closed, closed_query, interface_attr, invalid_query, non_empty, query_param,
    require,
};
use super::common::{
    authorize, bool_attr, collection_links, entity_body, entity_links, invalid, name_attr, new_id,
};
use super::error::{ApiError, ApiResult};
use super::{endpoints, json_response, AppState};
use crate::auth::missing;
use crate::catalog::GROUP_FILTER_KEYS;
use crate::model::EndpointGroup;

const GROUP_ATTRS: &[&str] = &["description", "filters", "name"];
const GROUPS: &str = "OS-EP-FILTER/endpoint_groups";

pub fn render_group(req: &HttpRequest, state: &AppState, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters,
        "links": entity_links(req, state, GROUPS, &g.id),
    })
}

fn groups(req: &HttpRequest, state: &AppState, list: &[EndpointGroup]) -> HttpResponse {
    let rendered: Vec<Value> = list.iter().map(|g| render_group(req, state, g)).collect();
    json_response(
        StatusCode::OK,
        &json!({"endpoint_groups": rendered, "links": collection_links(req, state)}),
    )
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

// --- project <-> endpoint -------------------------------------------------

/// PUT: 204; unknown endpoint or project 404; repeated 409.
pub async fn add_endpoint(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:add_endpoint_to_project", json!({})).await?;
    let (project_id, endpoint_id) = path.into_inner();
    state
        .catalog
        .add_endpoint_to_project(&project_id, &endpoint_id)
        .await?;
    Ok(no_content())
}

/// GET and HEAD: 204 when associated, else 404.
pub async fn check_endpoint(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:check_endpoint_in_project",
        json!({}),
    )
    .await?;
    let (project_id, endpoint_id) = path.into_inner();
    state
        .catalog
        .check_endpoint_in_project(&project_id, &endpoint_id)
        .await?;
    Ok(no_content())
}

pub async fn remove_endpoint(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:remove_endpoint_from_project",
        json!({}),
    )
    .await?;
    let (project_id, endpoint_id) = path.into_inner();
    state
        .catalog
        .remove_endpoint_from_project(&project_id, &endpoint_id)
        .await?;
    Ok(no_content())
}

/// Direct and endpoint-group endpoints of the project.
pub async fn project_endpoints(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:list_endpoints_for_project",
        json!({}),
    )
    .await?;
    let list = state.catalog.list_endpoints_for_project(&path).await?;
    Ok(endpoints::collection(&req, &state, &list))
}

pub async fn endpoint_projects(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:list_projects_for_endpoint",
        json!({}),
    )
    .await?;
    let list = state.catalog.list_projects_for_endpoint(&path).await?;
    super::projects::render_collection(&req, &state, list, collection_links(&req, &state)).await
}

// --- endpoint groups ------------------------------------------------------

/// The `filters` object: typed properties, then Keystone's
/// `_require_valid_filter` (only service_id, region_id, interface).
fn parse_filters(body: &Map<String, Value>) -> ApiResult<Option<Map<String, Value>>> {
    let filters = match body.get("filters") {
        None => return Ok(None),
        Some(Value::Object(f)) => f.clone(),
        Some(other) => {
            return Err(invalid(
                "filters",
                &format!("{other} is not of type 'object'"),
            ))
        }
    };
    interface_attr(&filters)?;
    bounded_string(&filters, "service_id", false, 0, usize::MAX)?;
    bounded_string(&filters, "region_id", true, 0, usize::MAX)?;
    bool_attr(&filters, "enabled")?;
    if filters
        .keys()
        .any(|k| !GROUP_FILTER_KEYS.contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(missing(
            "service_id or region_id or interface",
            "endpoint_group",
        )));
    }
    Ok(Some(filters))
}

fn parse_description(body: &Map<String, Value>) -> ApiResult<Option<Option<String>>> {
    bounded_string(body, "description", true, 0, usize::MAX)
}

/// Filter: `name` (the only query parameter Keystone accepts here).
pub async fn list_groups(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:list_endpoint_groups", json!({})).await?;
    closed_query(&req, &["name"])?;
    let name = query_param(&req, "name");
    if let Some(n) = &name {
        if n.trim().is_empty() {
            return Err(invalid_query(
                "name",
                n,
                &format!("'{n}' does not match '[\\S]+'"),
            ));
        }
    }
    let list = state.catalog.list_endpoint_groups(name.as_deref()).await?;
    Ok(groups(&req, &state, &list))
}

/// `name` and a non-empty `filters` are required; nothing else is accepted.
pub async fn create_group(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:create_endpoint_group", json!({})).await?;
    let body = entity_body(&req, payload, &state, "endpoint_group").await?;
    closed(&body, GROUP_ATTRS, "endpoint_group")?;
    require(&body, "name", "endpoint_group")?;
    require(&body, "filters", "endpoint_group")?;
    let name = name_attr(&body, "name", 255)?.unwrap_or_default();
    let description = parse_description(&body)?.flatten();
    let filters = match body.get("filters") {
        Some(Value::Object(f)) if f.is_empty() => {
            return Err(ApiError::BadRequest(
                "filters field is required and cannot be empty".into(),
            ))
        }
        _ => parse_filters(&body)?.unwrap_or_default(),
    };
    let group = EndpointGroup {
        id: new_id(),
        name,
        description,
        filters,
    };
    let group = state.catalog.create_endpoint_group(group).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"endpoint_group": render_group(&req, &state, &group)}),
    ))
}

pub async fn get_group(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:get_endpoint_group", json!({})).await?;
    let group = state.catalog.get_endpoint_group(&path).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"endpoint_group": render_group(&req, &state, &group)}),
    ))
}

/// `filters` replaces the old filters whole; an empty object is accepted here
/// (Keystone only insists on filters at creation).
pub async fn update_group(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:update_endpoint_group", json!({})).await?;
    let body = entity_body(&req, payload, &state, "endpoint_group").await?;
    closed(&body, GROUP_ATTRS, "endpoint_group")?;
    non_empty(&body, "endpoint_group")?;
    let name = name_attr(&body, "name", 255)?;
    let description = parse_description(&body)?;
    let filters = parse_filters(&body)?;
    let mut group = state.catalog.get_endpoint_group(&path).await?;
    if let Some(n) = name {
        group.name = n;
    }
    if let Some(d) = description {
        group.description = d;
    }
    if let Some(f) = filters {
        group.filters = f;
    }
    let group = state.catalog.update_endpoint_group(group).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"endpoint_group": render_group(&req, &state, &group)}),
    ))
}

pub async fn delete_group(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(&req, &state, "identity:delete_endpoint_group", json!({})).await?;
    state.catalog.delete_endpoint_group(&path).await?;
    Ok(no_content())
}

pub async fn group_projects(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:list_projects_associated_with_endpoint_group",
        json!({}),
    )
    .await?;
    let list = state
        .catalog
        .list_projects_for_endpoint_group(&path)
        .await?;
    super::projects::render_collection(&req, &state, list, collection_links(&req, &state)).await
}

pub async fn group_endpoints(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:list_endpoints_associated_with_endpoint_group",
        json!({}),
    )
    .await?;
    let list = state.catalog.list_endpoints_in_group(&path).await?;
    Ok(endpoints::collection(&req, &state, &list))
}

pub async fn project_groups(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:list_endpoint_groups_for_project",
        json!({}),
    )
    .await?;
    let list = state
        .catalog
        .list_endpoint_groups_for_project(&path)
        .await?;
    Ok(groups(&req, &state, &list))
}

// --- endpoint group <-> project -------------------------------------------

pub async fn add_group_to_project(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:add_endpoint_group_to_project",
        json!({}),
    )
    .await?;
    let (group_id, project_id) = path.into_inner();
    state
        .catalog
        .add_endpoint_group_to_project(&group_id, &project_id)
        .await?;
    Ok(no_content())
}

/// GET and HEAD: the association, whose `self` link Keystone renders without
/// the base URL and `/v3` (its override of `_add_self_referential_link`).
pub async fn get_group_in_project(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:get_endpoint_group_in_project",
        json!({}),
    )
    .await?;
    let (group_id, project_id) = path.into_inner();
    state
        .catalog
        .check_endpoint_group_in_project(&group_id, &project_id)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"project_endpoint_group": {
            "endpoint_group_id": group_id,
            "project_id": project_id,
            "links": {"self": format!("/OS-EP-FILTER/endpoint_groups/{group_id}/projects/{project_id}")},
        }}),
    ))
}

pub async fn remove_group_from_project(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:remove_endpoint_group_from_project",
        json!({}),
    )
    .await?;
    let (group_id, project_id) = path.into_inner();
    state
        .catalog
        .remove_endpoint_group_from_project(&group_id, &project_id)
        .await?;
    Ok(no_content())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    const P: &str = "/v3/OS-EP-FILTER";
    cfg.service(
        web::resource(format!(
            "{P}/projects/{{project_id}}/endpoints/{{endpoint_id}}"
        ))
        .route(web::put().to(add_endpoint))
        .route(web::get().to(check_endpoint))
        .route(web::head().to(check_endpoint))
        .route(web::delete().to(remove_endpoint)),
    )
    .service(
        web::resource(format!("{P}/projects/{{project_id}}/endpoints"))
            .route(web::get().to(project_endpoints))
            .route(web::head().to(project_endpoints)),
    )
    .service(
        web::resource(format!("{P}/projects/{{project_id}}/endpoint_groups"))
            .route(web::get().to(project_groups))
            .route(web::head().to(project_groups)),
    )
    .service(
        web::resource(format!("{P}/endpoints/{{endpoint_id}}/projects"))
            .route(web::get().to(endpoint_projects))
            .route(web::head().to(endpoint_projects)),
    )
    .service(
        web::resource(format!("{P}/endpoint_groups"))
            .route(web::get().to(list_groups))
            .route(web::head().to(list_groups))
            .route(web::post().to(create_group)),
    )
    .service(
        web::resource(format!("{P}/endpoint_groups/{{endpoint_group_id}}"))
            .route(web::get().to(get_group))
            .route(web::head().to(get_group))
            .route(web::patch().to(update_group))
            .route(web::delete().to(delete_group)),
    )
    .service(
        web::resource(format!(
            "{P}/endpoint_groups/{{endpoint_group_id}}/projects"
        ))
        .route(web::get().to(group_projects))
        .route(web::head().to(group_projects)),
    )
    .service(
        web::resource(format!(
            "{P}/endpoint_groups/{{endpoint_group_id}}/endpoints"
        ))
        .route(web::get().to(group_endpoints))
        .route(web::head().to(group_endpoints)),
    )
    .service(
        web::resource(format!(
            "{P}/endpoint_groups/{{endpoint_group_id}}/projects/{{project_id}}"
        ))
        .route(web::put().to(add_group_to_project))
        .route(web::get().to(get_group_in_project))
        .route(web::head().to(get_group_in_project))
        .route(web::delete().to(remove_group_from_project)),
    );
}
