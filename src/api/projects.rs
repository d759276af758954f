//! /v3/projects and /v3/projects/{id}/tags: authorize (with the project as policy
//! target) -> service -> render, as in `domains.rs`.
//!
//! Keystone builds a project's policy target before knowing whether it exists
//! (`_build_project_target_enforcement`): a missing project is an empty target, so
//! a caller who may not read it gets 403 rather than learning that it is missing.

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    bool_attr, extra_attrs, id_attr, invalid, name_attr, require_same_id, string_attr, JsonBody,
    TopLevel,
};
use super::kit::query::{flag, Truthy};
use super::kit::{
    collection, entity, json_response, no_content, page_links, resource, Caller, Links, PageQuery,
    Query, QueryPairs, Router, Target,
};
use super::AppState;
use crate::error::Error;
use crate::model::{new_id, Domain, ProjectFilter, TagFilters};
use crate::resource::{
    validate_tag, NewProject, ProjectPatch, ProjectQuery, ProjectView, MAX_PROJECT_TAGS,
};
use crate::token::provider::Scope;

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
pub fn project_collection(links: &Links, views: &[ProjectView]) -> HttpResponse {
    let rendered = views.iter().map(|v| render(links, v)).collect();
    collection(links, "projects", rendered, None)
}

pub fn render(links: &Links, v: &ProjectView) -> Value {
    let mut m = attributes(v);
    m.insert("links".into(), links.entity("projects", v.id()));
    Value::Object(m)
}

fn not_found(id: &str) -> ApiError {
    Error::not_found(format!("Could not find project: {id}.")).into()
}

/// Policy on the project (an empty target if it does not exist), then 404.
/// `domains_too`: a domain id is a project acting as a domain (the tag routes
/// take real projects only).
async fn authorized_view(
    caller: &Caller,
    state: &AppState,
    action: &str,
    id: &str,
    domains_too: bool,
) -> ApiResult<ProjectView> {
    let view = if domains_too {
        state.resource.find_project_view(id).await?
    } else {
        state.resource.find_project_with_tags(id).await?
    };
    let target = Target::none().with_found(
        "project",
        view.as_ref().map(|v| Value::Object(attributes(v))),
    );
    caller.enforce(action, target)?;
    view.ok_or_else(|| not_found(id))
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
fn tags_of(v: &Option<String>) -> Option<Vec<String>> {
    v.as_ref()
        .map(|v| v.split(',').map(str::to_string).collect())
}

/// `GET /v3/projects` parameters.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ProjectListQuery {
    name: Option<String>,
    domain_id: Option<String>,
    enabled: Option<Truthy>,
    parent_id: Option<String>,
    is_domain: Option<Truthy>,
    tags: Option<String>,
    #[serde(rename = "tags-any")]
    tags_any: Option<String>,
    #[serde(rename = "not-tags")]
    not_tags: Option<String>,
    #[serde(rename = "not-tags-any")]
    not_tags_any: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// GET /v3/projects. A domain-scoped caller is checked against its own domain
/// and sees only that domain's projects, as Keystone's list does.
pub async fn list(
    caller: Caller,
    query: Query<ProjectListQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let scoped_domain = caller.scoped_domain().map(str::to_string);
    // An absent key (not a null one) for other callers: `domain_id:None` would
    // otherwise match every project-scoped token.
    let target = match &scoped_domain {
        Some(d) => Target::of("domain_id", json!(d)),
        None => Target::none(),
    };
    caller.enforce("identity:list_projects", target)?;
    let q = &query.params;
    let filter = ProjectQuery {
        filter: ProjectFilter {
            name: q.name.clone(),
            domain_id: q.domain_id.clone(),
            enabled: flag(q.enabled),
            parent_id: q.parent_id.clone(),
            tags: TagFilters {
                all: tags_of(&q.tags),
                any: tags_of(&q.tags_any),
                not_all: tags_of(&q.not_tags),
                not_any: tags_of(&q.not_tags_any),
            },
            within_domain: scoped_domain,
        },
        is_domain: flag(q.is_domain).unwrap_or(false),
    };
    let request = q
        .page
        .request(state.settings.resource.list_limit, &state.settings.default)?;
    let page = state.resource.list_project_views(&filter, &request).await?;
    let next = page_links(&page, &request, |v| v.id());
    let rendered = page.items.iter().map(|v| render(&links, v)).collect();
    Ok(collection(&links, "projects", rendered, Some(next)))
}

/// GET /v3/projects/{id}, with Keystone's `parents_as_ids` / `subtree_as_ids`
/// and `parents_as_list` / `subtree_as_list` expansions.
pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    query: QueryPairs,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let view = authorized_view(&caller, &state, "identity:get_project", &path, true).await?;
    let mut body = render(&links, &view);
    expand(&query, &links, &state, &caller, &view, &mut body).await?;
    Ok(entity(StatusCode::OK, "project", body))
}

/// Adds `parents` / `subtree` to a project body when the query asks for them.
async fn expand(
    q: &QueryPairs,
    links: &Links,
    state: &AppState,
    caller: &Caller,
    view: &ProjectView,
    body: &mut Value,
) -> ApiResult<()> {
    let (parents_list, parents_ids) = (q.flag("parents_as_list"), q.flag("parents_as_ids"));
    let (subtree_list, subtree_ids) = (q.flag("subtree_as_list"), q.flag("subtree_as_ids"));
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
            wrap_visible(links, state, &parents, &visible).await?
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
            wrap_visible(links, state, &subtree, &visible).await?
        } else {
            nest_children(&project.id, &subtree)
        };
    }
    Ok(())
}

/// `[{"project": {...}}, ...]` for the projects the caller has a role on (one
/// service call for all of them).
async fn wrap_visible(
    links: &Links,
    state: &AppState,
    projects: &[crate::model::Project],
    visible: &[String],
) -> ApiResult<Value> {
    let ids: Vec<String> = projects
        .iter()
        .filter(|p| visible.contains(&p.id))
        .map(|p| p.id.clone())
        .collect();
    let views = state.resource.project_views_by_ids(&ids).await?;
    Ok(Value::Array(
        views
            .iter()
            .map(|v| json!({"project": render(links, v)}))
            .collect(),
    ))
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
    caller: Caller,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("project", TopLevel::Open)?;
    let name = name_attr(&body, "name", 64)?
        .ok_or_else(|| invalid("project", "'name' is a required property"))?;
    let description = string_attr(&body, "description", true)?
        .flatten()
        .unwrap_or_default();
    let enabled = bool_attr(&body, "enabled")?.unwrap_or(true);
    let is_domain = bool_attr(&body, "is_domain")?.unwrap_or(false);
    let domain_id = id_attr(&body, "domain_id", true)?.flatten();
    let parent_id = id_attr(&body, "parent_id", true)?.flatten();
    let tags = tags_attr(&body)?.unwrap_or_default();
    check_options(&body)?;
    caller.enforce(
        "identity:create_project",
        Target::of("project", Value::Object(body.clone())),
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
    Ok(entity(
        StatusCode::CREATED,
        "project",
        render(&links, &view),
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
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let view = authorized_view(&caller, &state, "identity:update_project", &path, true).await?;
    let body = json.entity("project", TopLevel::Open)?;
    require_same_id(&body, view.id())?;
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
    Ok(entity(StatusCode::OK, "project", render(&links, &view)))
}

/// DELETE /v3/projects/{id}: a leaf project, or (as in Keystone) a disabled domain.
pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let view = authorized_view(&caller, &state, "identity:delete_project", &path, true).await?;
    match view {
        ProjectView::Project { .. } => state.resource.delete_project(view.id()).await?,
        ProjectView::Domain(_) => state.resource.delete_domain(view.id()).await?,
    }
    Ok(no_content())
}

/// `{"links": {"self": <request URL>}, "tags": [...]}` (Keystone's tag `wrap_member`).
fn tags_body(links: &Links, tags: &[String]) -> Value {
    json!({"links": {"self": links.request_url()}, "tags": tags})
}

/// GET /v3/projects/{id}/tags.
pub async fn list_tags(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let action = "identity:list_project_tags";
    let view = authorized_view(&caller, &state, action, &path, false).await?;
    Ok(json_response(
        StatusCode::OK,
        &tags_body(&links, view.tags()),
    ))
}

/// PUT /v3/projects/{id}/tags: replaces every tag.
pub async fn replace_tags(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let action = "identity:update_project_tags";
    let view = authorized_view(&caller, &state, action, &path, false).await?;
    let body = json.0;
    let tags = tag_list("tags", body.get("tags").unwrap_or(&json!({})))?;
    let tags = state
        .resource
        .replace_project_tags(view.id(), &tags)
        .await?;
    Ok(json_response(StatusCode::OK, &tags_body(&links, &tags)))
}

/// DELETE /v3/projects/{id}/tags.
pub async fn delete_tags(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let action = "identity:delete_project_tags";
    let view = authorized_view(&caller, &state, action, &path, false).await?;
    state.resource.replace_project_tags(view.id(), &[]).await?;
    Ok(no_content())
}

/// GET /v3/projects/{id}/tags/{tag}: 204 if present.
pub async fn get_tag(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (id, tag) = path.into_inner();
    let view = authorized_view(&caller, &state, "identity:get_project_tag", &id, false).await?;
    if !view.tags().contains(&tag) {
        return Err(Error::not_found(format!("Could not find project tag: {tag}.")).into());
    }
    Ok(no_content())
}

/// PUT /v3/projects/{id}/tags/{tag}: 201 with the tag's URL.
pub async fn add_tag(
    caller: Caller,
    path: web::Path<(String, String)>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (id, tag) = path.into_inner();
    let action = "identity:create_project_tag";
    let view = authorized_view(&caller, &state, action, &id, false).await?;
    validate_tag(&tag).map_err(|problem| invalid("tags", &problem))?;
    state.resource.add_project_tag(view.id(), &tag).await?;
    let location = links.at(&format!("/v3/projects/{}/tags/{}", view.id(), tag.trim()));
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .finish())
}

/// DELETE /v3/projects/{id}/tags/{tag}.
pub async fn delete_tag(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (id, tag) = path.into_inner();
    let action = "identity:delete_project_tag";
    let view = authorized_view(&caller, &state, action, &id, false).await?;
    state.resource.remove_project_tag(view.id(), &tag).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/projects").get(list).post(create))
        .add(
            resource("/v3/projects/{project_id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .add(
            resource("/v3/projects/{project_id}/tags")
                .get(list_tags)
                .put(replace_tags)
                .delete(delete_tags),
        )
        .add(
            resource("/v3/projects/{project_id}/tags/{value}")
                .get(get_tag)
                .put(add_tag)
                .delete(delete_tag),
        );
}
