//! /v3/registered_limits, /v3/limits and /v3/limits/model (`keystone/api/limits.py`,
//! `registered_limits.py`). Bodies are checked as Keystone's schemas check them, with
//! jsonschema's paths (`registered_limits/0/default_limit`), before policy.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{bounded_string, closed, invalid, name_attr, require, JsonBody, TopLevel};
use super::kit::{
    collection, entity, json_response, no_content, resource, Caller, Links, QueryPairs, Router,
    Target,
};
use super::AppState;
use crate::model::{new_id, Limit, LimitFilter, RegisteredLimit, RegisteredLimitPatch};
use crate::token::provider::Scope;

/// jsonschema's error path: a field of an item of a batch is `<list>/<i>/<field>`.
/// A whole-item error (`closed`, `require`, reported on field '') names the item.
fn at<T>(prefix: &str, r: ApiResult<T>) -> ApiResult<T> {
    r.map_err(|e| match e {
        ApiError::BadRequest(m) => match m.strip_prefix("Invalid input for field '") {
            Some(rest) if rest.starts_with('\'') => {
                ApiError::BadRequest(format!("Invalid input for field '{prefix}{rest}"))
            }
            Some(rest) => ApiError::BadRequest(format!("Invalid input for field '{prefix}/{rest}")),
            None => ApiError::BadRequest(m),
        },
        other => other,
    })
}

/// `{"type": "integer", "minimum": -1, "maximum": 0x7FFFFFFF}`.
fn limit_value(obj: &Map<String, Value>, field: &str) -> ApiResult<Option<i64>> {
    let Some(v) = obj.get(field) else {
        return Ok(None);
    };
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    };
    match n {
        None => Err(invalid(field, &format!("{v} is not of type 'integer'"))),
        Some(n) if n < -1 => Err(invalid(
            field,
            &format!("{v} is less than the minimum of -1"),
        )),
        Some(n) if n > 0x7FFF_FFFF => Err(invalid(
            field,
            &format!("{v} is greater than the maximum of 2147483647"),
        )),
        Some(n) => Ok(Some(n)),
    }
}

/// The `id_string` ids a limit names (`project_id`, `domain_id`), nullable.
fn owner_id(obj: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match bounded_string(obj, field, true, 1, 64)?.flatten() {
        Some(s) if !super::kit::input::valid_id(&s) => Err(invalid(
            field,
            &format!("'{s}' does not match '^[a-zA-Z0-9-]+$'"),
        )),
        other => Ok(other),
    }
}

/// A batch body: `{"<key>": [ {...}, ... ]}`, at least one item, nothing else.
fn batch(json: JsonBody, key: &str) -> ApiResult<Vec<Map<String, Value>>> {
    let body = json.0;
    closed(&body, &[key], "/")?;
    let items = match body.get(key) {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid(key, &format!("{other} is not of type 'array'"))),
        None => return Err(invalid("/", &format!("'{key}' is a required property"))),
    };
    if items.is_empty() {
        return Err(invalid(key, "[] should be non-empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(m) => Ok(m.clone()),
            other => Err(invalid(
                &format!("{key}/{i}"),
                &format!("{other} is not of type 'object'"),
            )),
        })
        .collect()
}

fn region_attr(obj: &Map<String, Value>) -> ApiResult<Option<Option<String>>> {
    bounded_string(obj, "region_id", true, 1, 255)
}

fn description(obj: &Map<String, Value>) -> ApiResult<Option<Option<String>>> {
    bounded_string(obj, "description", true, 0, 255)
}

fn render_registered(links: &Links, r: &RegisteredLimit) -> Value {
    json!({
        "id": r.id,
        "service_id": r.service_id,
        "region_id": r.region_id,
        "resource_name": r.resource_name,
        "default_limit": r.default_limit,
        "description": r.description,
        "links": links.entity("registered_limits", &r.id),
    })
}

fn limit_dict(l: &Limit) -> Map<String, Value> {
    let v = json!({
        "id": l.id,
        "project_id": l.project_id,
        "domain_id": l.domain_id,
        "service_id": l.service_id,
        "region_id": l.region_id,
        "resource_name": l.resource_name,
        "resource_limit": l.resource_limit,
        "description": l.description,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn render_limit(links: &Links, l: &Limit) -> Value {
    let mut m = limit_dict(l);
    m.insert("links".into(), links.entity("limits", &l.id));
    Value::Object(m)
}

/// The filters both lists take; unknown query parameters are ignored, as Keystone's
/// open query schemas do.
fn filter_of(query: &QueryPairs) -> LimitFilter {
    let text = |name: &str| query.first(name).map(str::to_string);
    LimitFilter {
        service_id: text("service_id"),
        region_id: text("region_id").map(Some),
        resource_name: text("resource_name"),
        project_id: text("project_id"),
        domain_id: text("domain_id"),
    }
}

pub async fn list_registered(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_registered_limits", Target::none())?;
    let filter = LimitFilter {
        project_id: None,
        domain_id: None,
        ..filter_of(&query)
    };
    let shown = state
        .limits
        .list_registered_limits(&filter)
        .await?
        .iter()
        .map(|r| render_registered(&links, r))
        .collect();
    Ok(collection(&links, "registered_limits", shown, None))
}

fn registered_from(i: usize, item: &Map<String, Value>) -> ApiResult<RegisteredLimit> {
    let path = format!("registered_limits/{i}");
    let item = item.clone();
    let parsed = (|| {
        closed(
            &item,
            &[
                "service_id",
                "region_id",
                "resource_name",
                "default_limit",
                "description",
            ],
            "",
        )?;
        for field in ["service_id", "resource_name", "default_limit"] {
            require(&item, field, "")?;
        }
        Ok(RegisteredLimit {
            id: new_id(),
            service_id: bounded_string(&item, "service_id", false, 0, usize::MAX)?
                .flatten()
                .unwrap_or_default(),
            region_id: region_attr(&item)?.flatten(),
            resource_name: name_attr(&item, "resource_name", 255)?.unwrap_or_default(),
            default_limit: limit_value(&item, "default_limit")?.unwrap_or_default(),
            description: description(&item)?.flatten(),
        })
    })();
    at(&path, parsed)
}

pub async fn create_registered(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let items = batch(json, "registered_limits")?;
    let new = items
        .iter()
        .enumerate()
        .map(|(i, item)| registered_from(i, item))
        .collect::<ApiResult<Vec<_>>>()?;
    caller.enforce("identity:create_registered_limits", Target::none())?;
    let created = state.limits.create_registered_limits(new).await?;
    let shown: Vec<Value> = created
        .iter()
        .map(|r| render_registered(&links, r))
        .collect();
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "registered_limits": shown }),
    ))
}

pub async fn get_registered(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_registered_limit", Target::none())?;
    let r = state.limits.get_registered_limit(&path).await?;
    Ok(entity(
        StatusCode::OK,
        "registered_limit",
        render_registered(&links, &r),
    ))
}

pub async fn update_registered(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("registered_limit", TopLevel::Closed)?;
    closed(
        &body,
        &[
            "service_id",
            "region_id",
            "resource_name",
            "default_limit",
            "description",
        ],
        "registered_limit",
    )?;
    let patch = RegisteredLimitPatch {
        service_id: bounded_string(&body, "service_id", false, 0, usize::MAX)?.flatten(),
        region_id: region_attr(&body)?,
        resource_name: name_attr(&body, "resource_name", 255)?,
        default_limit: limit_value(&body, "default_limit")?,
        description: description(&body)?,
    };
    caller.enforce("identity:update_registered_limit", Target::none())?;
    let r = state.limits.update_registered_limit(&path, patch).await?;
    Ok(entity(
        StatusCode::OK,
        "registered_limit",
        render_registered(&links, &r),
    ))
}

pub async fn delete_registered(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_registered_limit", Target::none())?;
    state.limits.delete_registered_limit(&path).await?;
    Ok(no_content())
}

/// Who sees which limits (`LimitsResource.get`): admins, service users and system
/// readers all; a domain-scoped caller its domain's and its projects'; a project-scoped
/// caller its project's.
pub async fn list_limits(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_limits", Target::none())?;
    let mut filter = filter_of(&query);
    let superuser = matches!(caller.scope, Scope::System)
        || caller
            .roles
            .iter()
            .any(|r| r.name == "admin" || r.name == "service");
    let shown: Vec<Limit> = if superuser {
        state.limits.list_limits(&filter).await?
    } else {
        match &caller.scope {
            Scope::Domain(d) => state.limits.list_limits_in_domain(&filter, &d.id).await?,
            Scope::Project { project, .. } => {
                if filter.project_id.as_ref().is_some_and(|p| *p != project.id) {
                    Vec::new()
                } else {
                    filter.project_id = Some(project.id.clone());
                    state.limits.list_limits(&filter).await?
                }
            }
            _ => Vec::new(),
        }
    };
    let shown = shown.iter().map(|l| render_limit(&links, l)).collect();
    Ok(collection(&links, "limits", shown, None))
}

fn limit_from(i: usize, item: &Map<String, Value>) -> ApiResult<Limit> {
    let path = format!("limits/{i}");
    let item = item.clone();
    let parsed = (|| {
        closed(
            &item,
            &[
                "project_id",
                "domain_id",
                "service_id",
                "region_id",
                "resource_name",
                "resource_limit",
                "description",
            ],
            "",
        )?;
        for field in ["service_id", "resource_name", "resource_limit"] {
            require(&item, field, "")?;
        }
        let limit = Limit {
            id: new_id(),
            registered_limit_id: String::new(),
            project_id: owner_id(&item, "project_id")?,
            domain_id: owner_id(&item, "domain_id")?,
            service_id: bounded_string(&item, "service_id", false, 0, usize::MAX)?
                .flatten()
                .unwrap_or_default(),
            region_id: region_attr(&item)?.flatten(),
            resource_name: name_attr(&item, "resource_name", 255)?.unwrap_or_default(),
            resource_limit: limit_value(&item, "resource_limit")?.unwrap_or_default(),
            description: description(&item)?.flatten(),
        };
        // The schema's oneOf: exactly one of project_id and domain_id is given.
        if item.contains_key("project_id") == item.contains_key("domain_id") {
            return Err(invalid(
                "",
                &format!(
                    "{} is not valid under any of the given schemas",
                    Value::Object(item.clone())
                ),
            ));
        }
        Ok(limit)
    })();
    at(&path, parsed)
}

pub async fn create_limits(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let items = batch(json, "limits")?;
    let new = items
        .iter()
        .enumerate()
        .map(|(i, item)| limit_from(i, item))
        .collect::<ApiResult<Vec<_>>>()?;
    caller.enforce("identity:create_limits", Target::none())?;
    let created = state.limits.create_limits(new).await?;
    let shown: Vec<Value> = created.iter().map(|l| render_limit(&links, l)).collect();
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "limits": shown }),
    ))
}

/// `_build_limit_enforcement_target`: the limit, with its project or domain.
async fn limit_target(state: &AppState, limit: Option<&Limit>) -> ApiResult<Target> {
    let Some(l) = limit else {
        return Ok(Target::none());
    };
    let mut m = limit_dict(l);
    if let Some(p) = &l.project_id {
        if let Ok(project) = state.resource.get_project(p).await {
            m.insert(
                "project".into(),
                json!({"id": project.id, "domain_id": project.domain_id}),
            );
        }
    } else if let Some(d) = &l.domain_id {
        if let Ok(domain) = state.resource.get_domain(d).await {
            m.insert("domain".into(), json!({"id": domain.id}));
        }
    }
    Ok(Target::of("limit", Value::Object(m)))
}

pub async fn get_limit(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let found = state.limits.find_limit(&path).await?;
    caller.enforce(
        "identity:get_limit",
        limit_target(&state, found.as_ref()).await?,
    )?;
    let l = state.limits.get_limit(&path).await?;
    Ok(entity(StatusCode::OK, "limit", render_limit(&links, &l)))
}

pub async fn update_limit(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("limit", TopLevel::Closed)?;
    closed(&body, &["resource_limit", "description"], "limit")?;
    let resource_limit = limit_value(&body, "resource_limit")?;
    let description = description(&body)?;
    caller.enforce("identity:update_limit", Target::none())?;
    let l = state
        .limits
        .update_limit(&path, resource_limit, description)
        .await?;
    Ok(entity(StatusCode::OK, "limit", render_limit(&links, &l)))
}

pub async fn delete_limit(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_limit", Target::none())?;
    state.limits.delete_limit(&path).await?;
    Ok(no_content())
}

pub async fn get_model(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_limit_model", Target::none())?;
    let model = state.limits.model();
    Ok(json_response(
        StatusCode::OK,
        &json!({"model": {"name": model.name, "description": model.description}}),
    ))
}

pub fn routes(r: &mut Router) {
    r.add(
        resource("/v3/registered_limits")
            .get(list_registered)
            .post(create_registered),
    )
    .add(
        resource("/v3/registered_limits/{registered_limit_id}")
            .get(get_registered)
            .patch(update_registered)
            .delete(delete_registered),
    )
    .add(resource("/v3/limits/model").get(get_model))
    .add(resource("/v3/limits").get(list_limits).post(create_limits))
    .add(
        resource("/v3/limits/{limit_id}")
            .get(get_limit)
            .patch(update_limit)
            .delete(delete_limit),
    );
}
