//! /v3/projects and /v3/projects/{id}/tags: authorize (with the project as policy
//! target) -> service -> render, as in `domains.rs`.
//!
//! Keystone builds a project's policy target before knowing whether it exists
//! (`_build_project_target_enforcement`): a missing project is an empty target, so
//! a caller who may not read it gets 403 rather than learning that it is missing.

use std::sync::Arc;

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::body::json_object;
use super::common::{
    bool_attr, bool_filter, caller, collection_links, enforce, entity_body, entity_links,
    extra_attrs, invalid, name_attr, new_id, query_pairs, query_value, string_attr,
};
use super::error::{ApiError, ApiResult};
use super::{base_url, json_response, AppState};
use crate::error::Error;
use crate::model::Domain;
use crate::resource::{
    validate_tag, NewProject, ProjectPatch, ProjectQuery, ProjectView, TagFilters, MAX_PROJECT_TAGS,
};
use crate::token::provider::{Scope, Token};

/// Attributes with a meaning of their own; anything else is Keystone's `extra`.
const KNOWN: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "description",
    "enabled",
    "parent_id",
    "is_domain",
    "tags",
    "options",
    "links",
];

/// The project's attributes in Keystone's order, without `links`: also the policy target.
fn attributes(v: &ProjectView) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(v.id()));
    m.insert("name".into(), json!(v.name()));
    m.insert("domain_id".into(), json!(v.domain_id()));
    m.insert("description".into(), json!(v.description()));
    m.insert("enabled".into(), json!(v.enabled()));
    m.insert("parent_id".into(), json!(v.parent_id()));
    m.insert("is_domain".into(), json!(v.is_domain()));
    m.insert("tags".into(), json!(v.tags()));
    m.insert("options".into(), json!({}));
    for (k, val) in v.extra() {
        m.entry(k.clone()).or_insert_with(|| val.clone());
    }
    m
}

/// `{"projects": [...], "links": ...}` for any listing of projects (user projects,
/// endpoint associations, auth projects), in the projects API's representation.
pub async fn render_collection(
    req: &HttpRequest,
    state: &AppState,
    projects: Vec<crate::model::Project>,
    links: Value,
) -> ApiResult<HttpResponse> {
    let views = state.resource.project_views(projects).await?;
    let rendered: Vec<Value> = views.iter().map(|v| render(req, state, v)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"projects": rendered, "links": links}),
    ))
}

pub fn render(req: &HttpRequest, state: &AppState, v: &ProjectView) -> Value {
    let mut m = attributes(v);
    m.insert("links".into(), entity_links(req, state, "projects", v.id()));
    Value::Object(m)
}

fn not_found(id: &str) -> ApiError {
    Error::not_found(format!("Could not find project: {id}.")).into()
}

/// 401 without a valid token, then policy on the project (an empty target if it
/// does not exist), then 404. `domains_too`: a domain id is a project acting as a
/// domain (the tag routes take real projects only).
async fn authorized_view(
    req: &HttpRequest,
    state: &AppState,
    action: &str,
    id: &str,
    domains_too: bool,
) -> ApiResult<(Arc<Token>, ProjectView)> {
    let caller = caller(req, state).await?;
    let view = if domains_too {
        state.resource.find_project_view(id).await?
    } else {
        state.resource.find_project_with_tags(id).await?
    };
    let target = view
        .as_ref()
        .map_or_else(|| json!({}), |v| json!({"project": attributes(v)}));
    enforce(state, &caller, action, target)?;
    let view = view.ok_or_else(|| not_found(id))?;
    Ok((caller, view))
}

/// Keystone's `id_string`, nullable: 1..64 of `[a-zA-Z0-9-]`.
fn id_attr(obj: &Map<String, Value>, field: &str) -> ApiResult<Option<Option<String>>> {
    match string_attr(obj, field, true)? {
        Some(Some(s)) => {
            if s.is_empty() {
                Err(invalid(field, &format!("'{s}' is too short")))
            } else if s.chars().count() > 64 {
                Err(invalid(field, &format!("'{s}' is too long")))
            } else if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                Err(invalid(
                    field,
                    &format!("'{s}' does not match '^[a-zA-Z0-9-]+$'"),
                ))
            } else {
                Ok(Some(Some(s)))
            }
        }
        other => Ok(other),
    }
}

/// Keystone's `_project_tags_list_properties`: at most 80 unique valid tags.
fn tag_list(field: &str, value: &Value) -> ApiResult<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(invalid(field, &format!("{value} is not of type 'array'")));
    };
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(tag) = item else {
            return Err(invalid(field, &format!("{item} is not of type 'string'")));
        };
        validate_tag(tag).map_err(|problem| invalid(field, &problem))?;
        if tags.contains(tag) {
            return Err(invalid(field, &format!("{value} has non-unique elements")));
        }
        tags.push(tag.clone());
    }
    if tags.len() > MAX_PROJECT_TAGS {
        return Err(invalid(field, &format!("{value} is too long")));
    }
    Ok(tags)
}

fn tags_attr(obj: &Map<String, Value>) -> ApiResult<Option<Vec<String>>> {
    obj.get("tags").map(|v| tag_list("tags", v)).transpose()
}

/// Keystone's only project option is `immutable`, which keystone-rs does not
/// implement: accepted only when it asks for nothing (see docs/compatibility.md).
fn check_options(obj: &Map<String, Value>) -> ApiResult<()> {
    let Some(options) = obj.get("options") else {
        return Ok(());
    };
    let Value::Object(options) = options else {
        return Err(invalid(
            "options",
            &format!("{options} is not of type 'object'"),
        ));
    };
    for (k, v) in options {
        if k != "immutable" {
            return Err(invalid(
                "options",
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        match v {
            Value::Null | Value::Bool(false) => {}
            Value::Bool(true) => {
                return Err(ApiError::BadRequest(
                    "keystone-rs does not support the immutable resource option.".into(),
                ))
            }
            other => {
                return Err(invalid(
                    "options/immutable",
                    &format!("{other} is not of type 'boolean', 'null'"),
                ))
            }
        }
    }
    Ok(())
}

/// A comma-separated tag filter.
fn tag_filter(req: &HttpRequest, name: &str) -> Option<Vec<String>> {
    query_value(req, name).map(|v| v.split(',').map(str::to_string).collect())
}

/// GET /v3/projects. A domain-scoped caller is checked against its own domain
/// and sees only that domain's projects, as Keystone's list does.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let scoped_domain = match &caller.scope {
        Scope::Domain(d) => Some(d.id.clone()),
        _ => None,
    };
    // An absent key (not a null one) for other callers: `domain_id:None` would
    // otherwise match every project-scoped token.
    let target = scoped_domain
        .as_ref()
        .map_or_else(|| json!({}), |d| json!({"domain_id": d}));
    enforce(&state, &caller, "identity:list_projects", target)?;
    let query = ProjectQuery {
        name: query_value(&req, "name"),
        domain_id: query_value(&req, "domain_id"),
        enabled: bool_filter(&req, "enabled"),
        parent_id: query_value(&req, "parent_id"),
        is_domain: bool_filter(&req, "is_domain").unwrap_or(false),
        tags: TagFilters {
            all: tag_filter(&req, "tags"),
            any: tag_filter(&req, "tags-any"),
            not_all: tag_filter(&req, "not-tags"),
            not_any: tag_filter(&req, "not-tags-any"),
        },
    };
    let mut views = state.resource.list_project_views(&query).await?;
    if let Some(domain_id) = &scoped_domain {
        views.retain(|v| v.domain_id() == Some(domain_id.as_str()));
    }
    let rendered: Vec<Value> = views.iter().map(|v| render(&req, &state, v)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"projects": rendered, "links": collection_links(&req, &state)}),
    ))
}

/// GET /v3/projects/{id}, with Keystone's `parents_as_ids` / `subtree_as_ids`
/// and `parents_as_list` / `subtree_as_list` expansions.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (caller, view) = authorized_view(&req, &state, "identity:get_project", &path, true).await?;
    let mut body = render(&req, &state, &view);
    expand(&req, &state, &caller, &view, &mut body).await?;
    Ok(json_response(StatusCode::OK, &json!({"project": body})))
}

/// Keystone's `query_filter_is_true`: present and not "0".
fn flag(req: &HttpRequest, name: &str) -> bool {
    query_pairs(req).iter().any(|(k, v)| k == name && v != "0")
}

/// Adds `parents` / `subtree` to a project body when the query asks for them.
async fn expand(
    req: &HttpRequest,
    state: &AppState,
    caller: &Token,
    view: &ProjectView,
    body: &mut Value,
) -> ApiResult<()> {
    let (parents_list, parents_ids) = (flag(req, "parents_as_list"), flag(req, "parents_as_ids"));
    let (subtree_list, subtree_ids) = (flag(req, "subtree_as_list"), flag(req, "subtree_as_ids"));
    if parents_list && parents_ids {
        return Err(ApiError::BadRequest(
            "Cannot use parents_as_list and parents_as_ids query params at the same time.".into(),
        ));
    }
    if subtree_list && subtree_ids {
        return Err(ApiError::BadRequest(
            "Cannot use subtree_as_list and subtree_as_ids query params at the same time.".into(),
        ));
    }
    if !(parents_list || parents_ids || subtree_list || subtree_ids) {
        return Ok(());
    }
    let ProjectView::Project { project, .. } = view else {
        // A domain has no parents, and its projects are listed with ?domain_id=.
        if parents_list || parents_ids {
            body["parents"] = if parents_list { json!([]) } else { Value::Null };
        }
        if subtree_list || subtree_ids {
            body["subtree"] = if subtree_list { json!([]) } else { Value::Null };
        }
        return Ok(());
    };
    // Keystone shows in the lists only the projects the caller has a role on.
    let visible = if parents_list || subtree_list {
        state
            .assignment
            .target_ids_for_user(&caller.user.id, crate::model::TargetKind::Project)
            .await?
    } else {
        Vec::new()
    };
    if parents_list || parents_ids {
        let parents = state.resource.project_parents(project).await?;
        body["parents"] = if parents_list {
            wrap_visible(req, state, &parents, &visible).await?
        } else {
            // {parent: {grandparent: ... {domain: null}}}
            let mut nested = json!({ project.domain_id.clone(): null });
            for p in parents.iter().rev() {
                nested = json!({ p.id.clone(): nested });
            }
            nested
        };
    }
    if subtree_list || subtree_ids {
        let subtree = state.resource.project_subtree(&project.id).await?;
        body["subtree"] = if subtree_list {
            wrap_visible(req, state, &subtree, &visible).await?
        } else {
            nest_children(&project.id, &subtree)
        };
    }
    Ok(())
}

/// `[{"project": {...}}, ...]` for the projects the caller has a role on.
async fn wrap_visible(
    req: &HttpRequest,
    state: &AppState,
    projects: &[crate::model::Project],
    visible: &[String],
) -> ApiResult<Value> {
    let mut out = Vec::new();
    for p in projects.iter().filter(|p| visible.contains(&p.id)) {
        if let Some(view) = state.resource.find_project_with_tags(&p.id).await? {
            out.push(json!({"project": render(req, state, &view)}));
        }
    }
    Ok(Value::Array(out))
}

/// Keystone's `subtree_as_ids`: {child: {grandchild: null}}, or null for a leaf.
fn nest_children(id: &str, subtree: &[crate::model::Project]) -> Value {
    let children: Map<String, Value> = subtree
        .iter()
        .filter(|p| p.parent_id.as_deref() == Some(id))
        .map(|p| (p.id.clone(), nest_children(&p.id, subtree)))
        .collect();
    if children.is_empty() {
        Value::Null
    } else {
        Value::Object(children)
    }
}

/// POST /v3/projects. As in Keystone the policy target is the request body, before
/// the domain defaults to the caller's domain scope or `[identity] default_domain_id`.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let body = entity_body(&req, payload, &state, "project").await?;
    let name = name_attr(&body, "name", 64)?
        .ok_or_else(|| invalid("project", "'name' is a required property"))?;
    let description = string_attr(&body, "description", true)?
        .flatten()
        .unwrap_or_default();
    let enabled = bool_attr(&body, "enabled")?.unwrap_or(true);
    let is_domain = bool_attr(&body, "is_domain")?.unwrap_or(false);
    let domain_id = id_attr(&body, "domain_id")?.flatten();
    let parent_id = id_attr(&body, "parent_id")?.flatten();
    let tags = tags_attr(&body)?.unwrap_or_default();
    check_options(&body)?;
    enforce(
        &state,
        &caller,
        "identity:create_project",
        json!({"project": Value::Object(body.clone())}),
    )?;
    let extra = extra_attrs(&body, KNOWN);
    let view = if is_domain {
        if parent_id.is_some() {
            return Err(
                Error::validation("only root projects are allowed to act as domains.").into(),
            );
        }
        if !tags.is_empty() {
            return Err(Error::validation(
                "keystone-rs does not store tags on projects acting as domains.",
            )
            .into());
        }
        state
            .resource
            .create_domain_as_project(Domain {
                id: new_id(),
                name,
                description,
                enabled,
                extra,
            })
            .await?
    } else {
        let domain_id = domain_id.unwrap_or_else(|| match &caller.scope {
            Scope::Domain(d) => d.id.clone(),
            _ => state.resource.default_domain_id().to_string(),
        });
        state
            .resource
            .create_project(NewProject {
                id: new_id(),
                name,
                domain_id,
                parent_id,
                description,
                enabled,
                extra,
                tags,
            })
            .await?
    };
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"project": render(&req, &state, &view)}),
    ))
}

/// A present attribute as an optional string, whatever its JSON type: Keystone
/// compares immutable attributes with the stored value rather than validating them.
fn loose_string(obj: &Map<String, Value>, field: &str) -> Option<Option<String>> {
    obj.get(field).map(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// PATCH /v3/projects/{id}.
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (_, view) = authorized_view(&req, &state, "identity:update_project", &path, true).await?;
    let body = entity_body(&req, payload, &state, "project").await?;
    if let Some(id) = body.get("id").filter(|v| !v.is_null()) {
        if id.as_str() != Some(view.id()) {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    let patch = ProjectPatch {
        name: name_attr(&body, "name", 64)?,
        description: string_attr(&body, "description", true)?.map(Option::unwrap_or_default),
        enabled: bool_attr(&body, "enabled")?,
        tags: tags_attr(&body)?,
        extra: extra_attrs(&body, KNOWN),
        domain_id: loose_string(&body, "domain_id"),
        parent_id: loose_string(&body, "parent_id"),
        is_domain: bool_attr(&body, "is_domain")?,
    };
    check_options(&body)?;
    let view = match view {
        ProjectView::Project { .. } => state.resource.update_project(view.id(), patch).await?,
        ProjectView::Domain(_) => {
            state
                .resource
                .update_domain_as_project(view.id(), patch)
                .await?
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"project": render(&req, &state, &view)}),
    ))
}

/// DELETE /v3/projects/{id}: a leaf project, or (as in Keystone) a disabled domain.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (_, view) = authorized_view(&req, &state, "identity:delete_project", &path, true).await?;
    match view {
        ProjectView::Project { .. } => state.resource.delete_project(view.id()).await?,
        ProjectView::Domain(_) => state.resource.delete_domain(view.id()).await?,
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `{"links": {"self": <request URL>}, "tags": [...]}` (Keystone's tag `wrap_member`).
fn tags_body(req: &HttpRequest, state: &AppState, tags: &[String]) -> Value {
    let links = collection_links(req, state);
    json!({"links": {"self": links["self"]}, "tags": tags})
}

/// GET /v3/projects/{id}/tags.
pub async fn list_tags(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (_, view) =
        authorized_view(&req, &state, "identity:list_project_tags", &path, false).await?;
    Ok(json_response(
        StatusCode::OK,
        &tags_body(&req, &state, view.tags()),
    ))
}

/// PUT /v3/projects/{id}/tags: replaces every tag.
pub async fn replace_tags(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (_, view) =
        authorized_view(&req, &state, "identity:update_project_tags", &path, false).await?;
    let body = json_object(&req, payload, state.settings.server.max_request_body_size).await?;
    let tags = tag_list("tags", body.get("tags").unwrap_or(&json!({})))?;
    let tags = state
        .resource
        .replace_project_tags(view.id(), &tags)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &tags_body(&req, &state, &tags),
    ))
}

/// DELETE /v3/projects/{id}/tags.
pub async fn delete_tags(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (_, view) =
        authorized_view(&req, &state, "identity:delete_project_tags", &path, false).await?;
    state.resource.replace_project_tags(view.id(), &[]).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GET /v3/projects/{id}/tags/{tag}: 204 if present.
pub async fn get_tag(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (id, tag) = path.into_inner();
    let (_, view) = authorized_view(&req, &state, "identity:get_project_tag", &id, false).await?;
    if !view.tags().contains(&tag) {
        return Err(Error::not_found(format!("Could not find project tag: {tag}.")).into());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// PUT /v3/projects/{id}/tags/{tag}: 201 with the tag's URL.
pub async fn add_tag(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (id, tag) = path.into_inner();
    let (_, view) =
        authorized_view(&req, &state, "identity:create_project_tag", &id, false).await?;
    validate_tag(&tag).map_err(|problem| invalid("tags", &problem))?;
    state.resource.add_project_tag(view.id(), &tag).await?;
    let base = base_url(&req, &state.settings);
    let location = format!("{base}/v3/projects/{}/tags/{}", view.id(), tag.trim());
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .finish())
}

/// DELETE /v3/projects/{id}/tags/{tag}.
pub async fn delete_tag(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (id, tag) = path.into_inner();
    let (_, view) =
        authorized_view(&req, &state, "identity:delete_project_tag", &id, false).await?;
    state.resource.remove_project_tag(view.id(), &tag).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/projects")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create))
            .default_service(web::to(super::method_not_allowed)),
    )
    .service(
        web::resource("/v3/projects/{project_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete))
            .default_service(web::to(super::method_not_allowed)),
    )
    .service(
        web::resource("/v3/projects/{project_id}/tags")
            .route(web::get().to(list_tags))
            .route(web::head().to(list_tags))
            .route(web::put().to(replace_tags))
            .route(web::delete().to(delete_tags))
            .default_service(web::to(super::method_not_allowed)),
    )
    .service(
        web::resource("/v3/projects/{project_id}/tags/{value}")
            .route(web::get().to(get_tag))
            .route(web::head().to(get_tag))
            .route(web::put().to(add_tag))
            .route(web::delete().to(delete_tag))
            .default_service(web::to(super::method_not_allowed)),
    );
}
