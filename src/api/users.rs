//! /v3/users: Keystone's user API (`keystone/api/users.py`).
//!
//! Policy targets are built as Keystone's `_build_user_target_enforcement` does:
//! the user when it exists and nothing when it does not, so a caller who may not
//! see a user cannot tell a missing id (403) from a forbidden one; callers allowed
//! on any user get the 404. The helpers shared with /v3/groups live here too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    bool_attr, description_attr, extra_attrs, id_attr, invalid, name_attr, non_empty,
    normalize_keys, require_same_domain, require_same_id, string_attr, JsonBody, TopLevel,
};
use super::kit::query::{flag, Truthy};
use super::kit::{
    collection, entity, no_content, page_links, resource, Caller, Links, PageQuery, Query,
    QueryPairs, Router, Target,
};
use super::render::password_expiry;
use super::AppState;
use crate::error::Error;
use crate::identity::{PasswordChange, UserRef};
use crate::model::{new_id, Comparison, Group, Page, TextMatch, TextOp, User, UserFilter};

/// Attributes with a meaning of their own; everything else is Keystone's `extra`.
const KNOWN: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "enabled",
    "default_project_id",
    "password",
    "password_expires_at",
    "options",
    "federated",
    "links",
];

/// Keystone's `_identity_name` and `description` limits.
const NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 255;

/// The user as Keystone's `User.to_dict()` plus `filter_user`: extra attributes
/// first, then the columns; never the password.
pub fn user_dict(u: &User) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &u.extra {
        if !matches!(k.as_str(), "password" | "tenants") {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("id".into(), json!(u.id));
    m.insert("name".into(), json!(u.name));
    m.insert("domain_id".into(), json!(u.domain_id));
    m.insert("enabled".into(), json!(u.enabled));
    if let Some(p) = &u.default_project_id {
        m.insert("default_project_id".into(), json!(p));
    }
    m.insert(
        "password_expires_at".into(),
        password_expiry(u.password_expires_at),
    );
    m.insert("options".into(), Value::Object(u.options.clone()));
    m
}

pub fn render(links: &Links, u: &User) -> Value {
    let mut m = user_dict(u);
    m.insert("links".into(), links.entity("users", &u.id));
    Value::Object(m)
}

/// The group as Keystone's `Group.to_dict()`: extra attributes, then the columns.
pub fn group_dict(g: &Group) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &g.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(g.id));
    m.insert("name".into(), json!(g.name));
    m.insert("domain_id".into(), json!(g.domain_id));
    m.insert("description".into(), json!(g.description));
    m
}

pub fn render_group(links: &Links, g: &Group) -> Value {
    let mut m = group_dict(g);
    m.insert("links".into(), links.entity("groups", &g.id));
    Value::Object(m)
}

/// `{"user": <user>}` when the user exists, `{}` otherwise (Keystone defers the 404).
pub(crate) fn user_target(user: Option<&User>) -> Target {
    Target::none().with_found("user", user.map(|u| Value::Object(user_dict(u))))
}

fn user_not_found(id: &str) -> ApiError {
    Error::not_found(format!("Could not find user: {id}.")).into()
}

/// Keystone's user options that this server implements (`[security_compliance]`).
const USER_OPTIONS: &[&str] = &[
    "ignore_change_password_upon_first_use",
    "ignore_password_expiry",
    "ignore_lockout_failure_attempts",
    "lock_password",
    "ignore_user_inactivity",
];

/// The `options` of a request, checked as Keystone's options schema: each a
/// boolean or null (null removes it). MFA options and federated objects have no
/// storage here: refuse them rather than accept settings that would do nothing.
fn user_options(obj: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let options = match obj.get("options") {
        None => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(other) => {
            return Err(invalid(
                "options",
                &format!("{other} is not of type 'object'"),
            ))
        }
    };
    for (name, value) in &options {
        if matches!(
            name.as_str(),
            "multi_factor_auth_rules" | "multi_factor_auth_enabled"
        ) {
            return Err(invalid(
                &format!("options/{name}"),
                "multi-factor authentication is not supported by this server",
            ));
        }
        if !USER_OPTIONS.contains(&name.as_str()) {
            return Err(invalid(
                "options",
                &format!("Additional properties are not allowed ('{name}' was unexpected)"),
            ));
        }
        if !matches!(value, Value::Bool(_) | Value::Null) {
            return Err(invalid(
                &format!("options/{name}"),
                &format!("{value} is not of type 'boolean', 'null'"),
            ));
        }
    }
    match obj.get("federated") {
        None => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(invalid(
                "federated",
                "federated users are not supported by this server",
            ))
        }
        Some(other) => {
            return Err(invalid(
                "federated",
                &format!("{other} is not of type 'array'"),
            ))
        }
    }
    Ok(options)
}

/// Applies requested options: a value sets the option, null removes it (Keystone's
/// `resource_options_ref_to_mapper`).
fn merge_options(into: &mut Map<String, Value>, requested: Map<String, Value>) {
    for (name, value) in requested {
        if value.is_null() {
            into.remove(&name);
        } else {
            into.insert(name, value);
        }
    }
}

/// Keystone's inexact filters on `field` (`name__contains=x`, `name__istartswith=x`,
/// ...); unknown comparators are ignored, as Keystone ignores them.
pub fn text_matches(q: &QueryPairs, field: &str) -> Vec<TextMatch> {
    q.iter()
        .filter_map(|(k, wanted)| {
            let op = k.strip_prefix(field)?.strip_prefix("__")?;
            let (op, case_insensitive) = match op.strip_prefix('i') {
                Some(base) if matches!(base, "contains" | "startswith" | "endswith") => {
                    (base, true)
                }
                _ => (op, false),
            };
            let op = match op {
                "contains" => TextOp::Contains,
                "startswith" => TextOp::StartsWith,
                "endswith" => TextOp::EndsWith,
                _ => return None,
            };
            Some(TextMatch {
                op,
                value: wanted.to_string(),
                case_insensitive,
            })
        })
        .collect()
}

/// The user list filters (`GET /v3/users`, `GET /v3/groups/{id}/users`).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct UserListQuery {
    domain_id: Option<String>,
    name: Option<String>,
    enabled: Option<Truthy>,
    password_expires_at: Option<String>,
    idp_id: Option<String>,
    protocol_id: Option<String>,
    unique_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

impl UserListQuery {
    /// Federated attributes select shadow users only (Keystone's
    /// `_handle_shadow_and_local_users`); this server has none.
    fn federated(&self) -> bool {
        self.idp_id.is_some() || self.protocol_id.is_some() || self.unique_id.is_some()
    }
}

/// Every filter of a user listing, for SQL: Keystone's `build_driver_hints`, the
/// caller's domain for domain-scoped tokens, inexact names and password expiry.
pub fn user_filter(q: &Query<UserListQuery>, caller_domain: Option<&str>) -> ApiResult<UserFilter> {
    Ok(UserFilter {
        domain_id: q.domain_id.clone(),
        name: q.name.clone(),
        enabled: flag(q.enabled),
        within_domain: caller_domain.map(str::to_string),
        name_matches: text_matches(&q.pairs, "name"),
        password_expires: password_expiry_filter(q)?,
    })
}

/// Keystone's `password_expires_at={op}:{timestamp}` filter (`op` defaults to `eq`).
fn password_expiry_filter(q: &UserListQuery) -> ApiResult<Option<(Comparison, i64)>> {
    let Some(raw) = q.password_expires_at.clone() else {
        return Ok(None);
    };
    let (op, ts) = match raw.get(2..4) {
        Some(window) if window.contains(':') => match raw.split_once(':') {
            Some((op, ts)) => (op.to_string(), ts.to_string()),
            None => ("eq".to_string(), raw.clone()),
        },
        _ => ("eq".to_string(), raw.clone()),
    };
    let micros = chrono::DateTime::parse_from_rfc3339(&ts)
        .map(|t| t.timestamp_micros())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(&ts, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .map_err(|_| {
            ApiError::BadRequest(
                "Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
                    .into(),
            )
        })?;
    let op = Comparison::parse(&op).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "The given operator {op} is not valid. It must be one of the following: 'eq', 'neq', 'lt', 'lte', 'gt', or 'gte'."
        ))
    })?;
    Ok(Some((op, micros)))
}

pub async fn list(
    caller: Caller,
    query: Query<UserListQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain = caller.scoped_domain();
    // Keystone: a domain-scoped caller is checked against its own domain, and sees
    // only that domain's users whatever `domain_id` it asks for.
    let target = match domain {
        Some(d) => Target::of("domain_id", json!(d)),
        None => Target::none(),
    };
    caller.enforce("identity:list_users", target)?;
    let filter = user_filter(&query, domain)?;
    let request = query
        .page
        .request(state.settings.identity.list_limit, &state.settings.default)?;
    let page = if query.federated() {
        Page {
            items: Vec::new(),
            more: false,
        }
    } else {
        state.identity.list_users(&filter, &request).await?
    };
    let next = page_links(&page, &request, |u| &u.id);
    let rendered = page.items.iter().map(|u| render(&links, u)).collect();
    Ok(collection(&links, "users", rendered, Some(next)))
}

/// Loads the user if it exists, then enforces `action` with whatever was found.
async fn authorized_user(
    caller: &Caller,
    state: &AppState,
    id: &str,
    action: &str,
) -> ApiResult<Option<User>> {
    let user = state
        .identity
        .find_user(&UserRef::Id(id.to_string()))
        .await?;
    caller.enforce(action, user_target(user.as_ref()).arg("user_id", id))?;
    Ok(user)
}

pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user = authorized_user(&caller, &state, &path, "identity:get_user")
        .await?
        .ok_or_else(|| user_not_found(&path))?;
    Ok(entity(StatusCode::OK, "user", render(&links, &user)))
}

pub async fn create(
    caller: Caller,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let raw = json.entity("user", TopLevel::Closed)?;
    let body = normalize_keys(&raw);
    let name = name_attr(&body, "name", NAME_MAX)?
        .ok_or_else(|| invalid("user", "'name' is a required property"))?;
    let domain_id = id_attr(&body, "domain_id", false)?.flatten();
    let enabled = bool_attr(&body, "enabled")?.unwrap_or(true);
    let default_project_id = id_attr(&body, "default_project_id", true)?.flatten();
    // `description` is validated here and kept, like any other attribute, in `extra`.
    description_attr(&body, DESCRIPTION_MAX)?;
    let password = string_attr(&body, "password", true)?.flatten();
    let requested_options = user_options(&body)?;
    // Keystone enforces on the body as sent, before filling in the domain: a domain
    // manager must name its domain explicitly.
    caller.enforce(
        "identity:create_user",
        Target::of("user", Value::Object(raw)),
    )?;
    let domain_id = domain_id.unwrap_or_else(|| {
        caller
            .scoped_domain()
            .unwrap_or(&state.settings.identity.default_domain_id)
            .to_string()
    });
    let extra = extra_attrs(&body, KNOWN);
    let mut options = Map::new();
    merge_options(&mut options, requested_options);
    let user = User {
        id: new_id(),
        name,
        domain_id,
        enabled,
        default_project_id,
        extra,
        password_hash: None,
        password_expires_at: None,
        created_at: 0,
        options,
        login: Default::default(),
    };
    let user = state
        .identity
        .create_user(user, password.as_deref())
        .await?;
    Ok(entity(StatusCode::CREATED, "user", render(&links, &user)))
}

pub async fn update(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let found = authorized_user(&caller, &state, &path, "identity:update_user").await?;
    let body = json.entity("user", TopLevel::Closed)?;
    non_empty(&body, "user")?;
    let name = name_attr(&body, "name", NAME_MAX)?;
    let enabled = bool_attr(&body, "enabled")?;
    let default_project_id = id_attr(&body, "default_project_id", true)?;
    description_attr(&body, DESCRIPTION_MAX)?;
    let password = string_attr(&body, "password", true)?;
    let requested_options = user_options(&body)?;
    let mut user = found.ok_or_else(|| user_not_found(&path))?;
    require_same_id(&body, &user.id)?;
    let named_domain = require_same_domain(&body, &user.domain_id)?;
    if let Some(name) = name {
        user.name = name;
    }
    if let Some(enabled) = enabled {
        user.enabled = enabled;
    }
    if let Some(p) = default_project_id {
        user.default_project_id = p;
    }
    user.extra.extend(extra_attrs(&body, KNOWN));
    merge_options(&mut user.options, requested_options);
    // Keystone revokes on any non-null password, even one equal to the old one.
    let password = match password {
        None => PasswordChange::Keep,
        Some(None) => PasswordChange::Clear,
        Some(Some(p)) => PasswordChange::Set(p),
    };
    let user = state
        .identity
        .update_user_with(&user, password, named_domain)
        .await?;
    Ok(entity(StatusCode::OK, "user", render(&links, &user)))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let found = authorized_user(&caller, &state, &path, "identity:delete_user").await?;
    if found.is_none() {
        return Err(user_not_found(&path));
    }
    state.identity.delete_user(&path).await?;
    Ok(no_content())
}

/// POST /v3/users/{user_id}/password. Keystone marks this API unenforced and asks for
/// no token: the original password is the credential, so a user whose password
/// expired (and who therefore cannot get a token) can still replace it.
pub async fn change_password(
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("user", TopLevel::Closed)?;
    for key in body.keys() {
        if key != "original_password" && key != "password" {
            return Err(invalid(
                "user",
                &format!("Additional properties are not allowed ('{key}' was unexpected)"),
            ));
        }
    }
    let original = string_attr(&body, "original_password", false)?
        .flatten()
        .ok_or_else(|| invalid("user", "'original_password' is a required property"))?;
    let new = string_attr(&body, "password", false)?
        .flatten()
        .ok_or_else(|| invalid("user", "'password' is a required property"))?;
    let source = super::kit::client::client_ip(&req, &state.settings.server.trusted_proxies);
    crate::telemetry::audit::with_source(
        source,
        state.identity.change_password(&path, &original, &new),
    )
    .await?;
    Ok(no_content())
}

/// GET /v3/users/{user_id}/projects: projects with a role assignment, as Keystone's
/// `list_projects_for_user` (disabled ones included), filtered by `domain_id`,
/// `enabled` and `name`.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct UserProjectsQuery {
    domain_id: Option<String>,
    name: Option<String>,
    enabled: Option<Truthy>,
}

pub async fn projects(
    caller: Caller,
    path: web::Path<String>,
    query: Query<UserProjectsQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorized_user(&caller, &state, &path, "identity:list_user_projects").await?;
    let filter = crate::model::ProjectFilter {
        domain_id: query.domain_id.clone(),
        name: query.name.clone(),
        enabled: flag(query.enabled),
        ..Default::default()
    };
    let mut views = state
        .identity
        .project_views_for_user(&path, &filter)
        .await?;
    let matches = text_matches(&query.pairs, "name");
    views.retain(|v| matches.iter().all(|m| m.matches(v.name())));
    Ok(super::projects::project_collection(&links, &views))
}

/// GET /v3/users/{user_id}/groups; a domain-scoped caller sees only its domain's
/// groups. Each group carries `membership_expires_at` (always null: memberships
/// here do not expire), as Keystone's `list_groups_for_user`.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct NameQuery {
    name: Option<String>,
}

pub async fn groups(
    caller: Caller,
    path: web::Path<String>,
    query: Query<NameQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorized_user(&caller, &state, &path, "identity:list_groups_for_user").await?;
    let domain = caller.scoped_domain();
    let matches = text_matches(&query.pairs, "name");
    let rendered = state
        .identity
        .list_groups_for_user(&path)
        .await?
        .iter()
        .filter(|g| domain.is_none_or(|d| g.domain_id == d))
        .filter(|g| query.name.as_ref().is_none_or(|n| &g.name == n))
        .filter(|g| matches.iter().all(|m| m.matches(&g.name)))
        .map(|g| {
            let mut v = render_group(&links, g);
            v["membership_expires_at"] = Value::Null;
            v
        })
        .collect();
    Ok(collection(&links, "groups", rendered, None))
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/users").get(list).post(create))
        .add(
            resource("/v3/users/{user_id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .add(resource("/v3/users/{user_id}/password").post(change_password))
        .add(resource("/v3/users/{user_id}/projects").get(projects))
        .add(resource("/v3/users/{user_id}/groups").get(groups));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_dict_hides_password_and_orders_extras_first() {
        let mut extra = Map::new();
        extra.insert("email".into(), json!("a@b"));
        extra.insert("password".into(), json!("leak"));
        let u = User {
            id: "u1".into(),
            name: "n".into(),
            domain_id: "default".into(),
            enabled: true,
            default_project_id: None,
            extra,
            password_hash: Some("$argon2id$secret".into()),
            password_expires_at: None,
            created_at: 0,
            options: Map::new(),
            login: Default::default(),
        };
        let d = user_dict(&u);
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "email",
                "id",
                "name",
                "domain_id",
                "enabled",
                "password_expires_at",
                "options"
            ]
        );
        assert!(!Value::Object(d).to_string().contains("secret"));
    }
}
