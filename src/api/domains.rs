//! /v3/domains: the reference shape for every management resource. A route table, and
//! handlers that take the caller, enforce with the entity as target, call the service
//! and present.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::ApiResult;
use super::kit::input::{
    bool_attr, extra_attrs, forbid, invalid, name_attr, string_attr, JsonBody, TopLevel,
};
use super::kit::query::{flag, Truthy};
use super::kit::{
    collection, entity, no_content, page_links, resource, Caller, Links, PageQuery, Query, Router,
    Target,
};
use super::AppState;
use crate::model::{new_id, Domain};

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

pub fn render(links: &Links, d: &Domain) -> Value {
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
    m.insert("links".into(), links.entity("domains", &d.id));
    Value::Object(m)
}

/// Loads the domain (404), then enforces `action` on it (403).
async fn authorized(
    caller: &Caller,
    state: &AppState,
    id: &str,
    action: &str,
) -> ApiResult<Domain> {
    let domain = state.resource.get_domain(id).await?;
    caller.enforce(action, Target::of("domain", json!({"id": domain.id})))?;
    Ok(domain)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct DomainQuery {
    name: Option<String>,
    enabled: Option<Truthy>,
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list(
    caller: Caller,
    query: Query<DomainQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_domains", Target::none())?;
    let request = query
        .page
        .request(state.settings.resource.list_limit, &state.settings.default)?;
    let page = state
        .resource
        .list_domains(query.name.as_deref(), flag(query.enabled), &request)
        .await?;
    let next = page_links(&page, &request, |d| &d.id);
    let rendered = page.items.iter().map(|d| render(&links, d)).collect();
    Ok(collection(&links, "domains", rendered, Some(next)))
}

pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain = authorized(&caller, &state, &path, "identity:get_domain").await?;
    Ok(entity(StatusCode::OK, "domain", render(&links, &domain)))
}

pub async fn create(
    caller: Caller,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_domain", Target::none())?;
    let body = json.entity("domain", TopLevel::Open)?;
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
    Ok(entity(
        StatusCode::CREATED,
        "domain",
        render(&links, &domain),
    ))
}

pub async fn update(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let mut domain = authorized(&caller, &state, &path, "identity:update_domain").await?;
    let body = json.entity("domain", TopLevel::Open)?;
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
    Ok(entity(StatusCode::OK, "domain", render(&links, &domain)))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain = authorized(&caller, &state, &path, "identity:delete_domain").await?;
    state.resource.delete_domain(&domain.id).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/domains").get(list).post(create)).add(
        resource("/v3/domains/{domain_id}")
            .get(get)
            .patch(update)
            .delete(delete),
    );
}
