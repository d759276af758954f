//! /v3/OS-EP-FILTER: project <-> endpoint associations and endpoint groups
//! (Keystone's `keystone/api/os_ep_filter.py`). Every rule is enforced without
//! a target, before any lookup: 401, 403, then 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::endpoints::endpoint_collection;
use super::error::{ApiError, ApiResult};
use super::kit::input::{
    bool_attr, bounded_string, closed, closed_query, interface_attr, invalid, invalid_query,
    name_attr, non_empty, require, JsonBody, TopLevel,
};
use super::kit::{
    collection, entity, json_response, no_content, resource, Caller, Links, QueryPairs, Router,
    Target,
};
use super::projects::project_collection;
use super::AppState;
use crate::auth::missing;
use crate::catalog::GROUP_FILTER_KEYS;
use crate::model::{new_id, EndpointGroup};

const GROUP_ATTRS: &[&str] = &["description", "filters", "name"];
const GROUPS: &str = "OS-EP-FILTER/endpoint_groups";

pub fn render_group(links: &Links, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters,
        "links": links.entity(GROUPS, &g.id),
    })
}

fn groups(links: &Links, list: &[EndpointGroup]) -> HttpResponse {
    let rendered = list.iter().map(|g| render_group(links, g)).collect();
    collection(links, "endpoint_groups", rendered, None)
}

// --- project <-> endpoint -------------------------------------------------

/// PUT: 204; unknown endpoint or project 404; repeated 409.
pub async fn add_endpoint(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:add_endpoint_to_project", Target::none())?;
    let (project_id, endpoint_id) = path.into_inner();
    state
        .catalog
        .add_endpoint_to_project(&project_id, &endpoint_id)
        .await?;
    Ok(no_content())
}

/// GET and HEAD: 204 when associated, else 404.
pub async fn check_endpoint(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:check_endpoint_in_project", Target::none())?;
    let (project_id, endpoint_id) = path.into_inner();
    state
        .catalog
        .check_endpoint_in_project(&project_id, &endpoint_id)
        .await?;
    Ok(no_content())
}

pub async fn remove_endpoint(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:remove_endpoint_from_project", Target::none())?;
    let (project_id, endpoint_id) = path.into_inner();
    state
        .catalog
        .remove_endpoint_from_project(&project_id, &endpoint_id)
        .await?;
    Ok(no_content())
}

/// Direct and endpoint-group endpoints of the project.
pub async fn project_endpoints(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_endpoints_for_project", Target::none())?;
    let list = state.catalog.list_endpoints_for_project(&path).await?;
    Ok(endpoint_collection(&links, &list))
}

pub async fn endpoint_projects(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_projects_for_endpoint", Target::none())?;
    let list = state.catalog.list_projects_for_endpoint(&path).await?;
    let views = state.resource.project_views(list).await?;
    Ok(project_collection(&links, &views))
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
pub async fn list_groups(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_endpoint_groups", Target::none())?;
    closed_query(&query, &["name"])?;
    let name = query.first("name").map(str::to_string);
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
    Ok(groups(&links, &list))
}

/// `name` and a non-empty `filters` are required; nothing else is accepted.
pub async fn create_group(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_endpoint_group", Target::none())?;
    let body = json.entity("endpoint_group", TopLevel::Open)?;
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
    Ok(entity(
        StatusCode::CREATED,
        "endpoint_group",
        render_group(&links, &group),
    ))
}

pub async fn get_group(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_endpoint_group", Target::none())?;
    let group = state.catalog.get_endpoint_group(&path).await?;
    Ok(entity(
        StatusCode::OK,
        "endpoint_group",
        render_group(&links, &group),
    ))
}

/// `filters` replaces the old filters whole; an empty object is accepted here
/// (Keystone only insists on filters at creation).
pub async fn update_group(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_endpoint_group", Target::none())?;
    let body = json.entity("endpoint_group", TopLevel::Open)?;
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
    Ok(entity(
        StatusCode::OK,
        "endpoint_group",
        render_group(&links, &group),
    ))
}

pub async fn delete_group(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_endpoint_group", Target::none())?;
    state.catalog.delete_endpoint_group(&path).await?;
    Ok(no_content())
}

pub async fn group_projects(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce(
        "identity:list_projects_associated_with_endpoint_group",
        Target::none(),
    )?;
    let list = state
        .catalog
        .list_projects_for_endpoint_group(&path)
        .await?;
    let views = state.resource.project_views(list).await?;
    Ok(project_collection(&links, &views))
}

pub async fn group_endpoints(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce(
        "identity:list_endpoints_associated_with_endpoint_group",
        Target::none(),
    )?;
    let list = state.catalog.list_endpoints_in_group(&path).await?;
    Ok(endpoint_collection(&links, &list))
}

pub async fn project_groups(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_endpoint_groups_for_project", Target::none())?;
    let list = state
        .catalog
        .list_endpoint_groups_for_project(&path)
        .await?;
    Ok(groups(&links, &list))
}

// --- endpoint group <-> project -------------------------------------------

pub async fn add_group_to_project(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:add_endpoint_group_to_project", Target::none())?;
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
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_endpoint_group_in_project", Target::none())?;
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
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce(
        "identity:remove_endpoint_group_from_project",
        Target::none(),
    )?;
    let (group_id, project_id) = path.into_inner();
    state
        .catalog
        .remove_endpoint_group_from_project(&group_id, &project_id)
        .await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    const P: &str = "/v3/OS-EP-FILTER";
    r.add(
        resource(format!(
            "{P}/projects/{{project_id}}/endpoints/{{endpoint_id}}"
        ))
        .put(add_endpoint)
        .get(check_endpoint)
        .delete(remove_endpoint),
    )
    .add(resource(format!("{P}/projects/{{project_id}}/endpoints")).get(project_endpoints))
    .add(resource(format!("{P}/projects/{{project_id}}/endpoint_groups")).get(project_groups))
    .add(resource(format!("{P}/endpoints/{{endpoint_id}}/projects")).get(endpoint_projects))
    .add(
        resource(format!("{P}/endpoint_groups"))
            .get(list_groups)
            .post(create_group),
    )
    .add(
        resource(format!("{P}/endpoint_groups/{{endpoint_group_id}}"))
            .get(get_group)
            .patch(update_group)
            .delete(delete_group),
    )
    .add(
        resource(format!(
            "{P}/endpoint_groups/{{endpoint_group_id}}/projects"
        ))
        .get(group_projects),
    )
    .add(
        resource(format!(
            "{P}/endpoint_groups/{{endpoint_group_id}}/endpoints"
        ))
        .get(group_endpoints),
    )
    .add(
        resource(format!(
            "{P}/endpoint_groups/{{endpoint_group_id}}/projects/{{project_id}}"
        ))
        .put(add_group_to_project)
        .get(get_group_in_project)
        .delete(remove_group_from_project),
    );
}
