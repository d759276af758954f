//! /v3/users: Keystone's user API (`keystone/api/users.py`).
//!
//! Policy targets are built as Keystone's `_build_user_target_enforcement` does:
//! the user when it exists and nothing when it does not, so a caller who may not
//! see a user cannot tell a missing id (403) from a forbidden one; callers allowed
//! on any user get the 404. The helpers shared with /v3/groups live here too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::body::json_object;
use super::common::normalize_keys;
use super::common::{
    bool_attr, bool_filter, caller, collection_links, enforce_with_args, entity_links, extra_attrs,
    invalid, name_attr, new_id, query_pairs, query_value, string_attr,
};
use super::error::{ApiError, ApiResult};
use super::render::password_expiry;
use super::{json_response, method_not_allowed, AppState};
use crate::error::Error;
use crate::identity::{PasswordChange, UserRef};
use crate::model::{Group, Project, User, UserFilter};
use crate::token::provider::{Scope, Token};

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
    m.insert("options".into(), json!({}));
    m
}

pub fn render(req: &HttpRequest, state: &AppState, u: &User) -> Value {
    let mut m = user_dict(u);
    m.insert("links".into(), entity_links(req, state, "users", &u.id));
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

pub fn render_group(req: &HttpRequest, state: &AppState, g: &Group) -> Value {
    let mut m = group_dict(g);
    m.insert("links".into(), entity_links(req, state, "groups", &g.id));
    Value::Object(m)
}

/// The domain of a domain-scoped caller: Keystone limits what such a caller lists
/// to that domain, whatever the filters say.
pub fn token_domain(t: &Token) -> Option<String> {
    match &t.scope {
        Scope::Domain(d) => Some(d.id.clone()),
        _ => None,
    }
}

/// `{"user": <user>}` when the user exists, `{}` otherwise (Keystone defers the 404).
fn user_target(user: Option<&User>) -> Value {
    match user {
        Some(u) => json!({ "user": user_dict(u) }),
        None => json!({}),
    }
}

fn user_not_found(id: &str) -> ApiError {
    Error::not_found(format!("Could not find user: {id}.")).into()
}

/// Reads `{"<key>": {...}}`, refusing other top-level members as Keystone's
/// request schemas do (`additionalProperties: false`).
pub async fn strict_entity_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    key: &str,
) -> ApiResult<Map<String, Value>> {
    let mut body = json_object(req, payload, state.settings.server.max_request_body_size).await?;
    let inner = match body.remove(key) {
        Some(Value::Object(m)) => m,
        Some(other) => return Err(invalid(key, &format!("{other} is not of type 'object'"))),
        None => return Err(invalid(key, &format!("'{key}' is a required property"))),
    };
    if let Some(extra) = body.keys().next() {
        return Err(invalid(
            "/",
            &format!("Additional properties are not allowed ('{extra}' was unexpected)"),
        ));
    }
    Ok(inner)
}

/// Keystone's `parameter_types.id_string`: `^[a-zA-Z0-9-]+$`, at most 64 characters.
pub fn id_string_attr(
    obj: &Map<String, Value>,
    field: &str,
    nullable: bool,
) -> ApiResult<Option<Option<String>>> {
    match string_attr(obj, field, nullable)? {
        Some(Some(s)) => {
            if s.is_empty() || s.chars().count() > 64 {
                Err(invalid(field, &format!("'{s}' is not a valid id")))
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

/// Keystone's nullable `description`: a string of at most 255 characters, or null.
pub fn description_attr(obj: &Map<String, Value>) -> ApiResult<Option<Option<String>>> {
    let d = string_attr(obj, "description", true)?;
    if let Some(Some(s)) = &d {
        if s.chars().count() > DESCRIPTION_MAX {
            return Err(invalid("description", &format!("'{s}' is too long")));
        }
    }
    Ok(d)
}

/// User options and federated objects have no storage here: refuse them rather
/// than accept settings that would silently do nothing.
fn unsupported_user_attrs(obj: &Map<String, Value>) -> ApiResult<()> {
    match obj.get("options") {
        None => {}
        Some(Value::Object(o)) if o.is_empty() => {}
        Some(Value::Object(_)) => {
            return Err(invalid(
                "options",
                "user options are not supported by this server",
            ))
        }
        Some(other) => {
            return Err(invalid(
                "options",
                &format!("{other} is not of type 'object'"),
            ))
        }
    }
    match obj.get("federated") {
        None => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(Value::Array(_)) => Err(invalid(
            "federated",
            "federated users are not supported by this server",
        )),
        Some(other) => Err(invalid(
            "federated",
            &format!("{other} is not of type 'array'"),
        )),
    }
}

/// Keystone's inexact filters (`name__contains=x`, `name__istartswith=x`, ...) on a
/// string attribute; unknown comparators are ignored, as Keystone ignores them.
pub fn inexact_match(req: &HttpRequest, field: &str, value: &str) -> bool {
    query_pairs(req).iter().all(|(k, wanted)| {
        let Some(op) = k
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix("__"))
        else {
            return true;
        };
        let (op, fold) = match op.strip_prefix('i') {
            Some(base) if matches!(base, "contains" | "startswith" | "endswith") => (base, true),
            _ => (op, false),
        };
        let (hay, needle) = if fold {
            (value.to_lowercase(), wanted.to_lowercase())
        } else {
            (value.to_string(), wanted.clone())
        };
        match op {
            "contains" => hay.contains(&needle),
            "startswith" => hay.starts_with(&needle),
            "endswith" => hay.ends_with(&needle),
            _ => true,
        }
    })
}

/// `domain_id`, `name` and `enabled` list filters as Keystone's `build_driver_hints`.
pub fn user_filter(req: &HttpRequest) -> UserFilter {
    UserFilter {
        domain_id: query_value(req, "domain_id"),
        name: query_value(req, "name"),
        enabled: bool_filter(req, "enabled"),
    }
}

/// Keystone's `password_expires_at={op}:{timestamp}` filter (`op` defaults to `eq`).
/// As in Keystone's SQL, a user whose password never expires matches no comparison.
fn password_expiry_filter(req: &HttpRequest) -> ApiResult<Option<(String, i64)>> {
    let Some(raw) = query_value(req, "password_expires_at") else {
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
    if !matches!(op.as_str(), "lt" | "lte" | "gt" | "gte" | "eq" | "neq") {
        return Err(ApiError::BadRequest(format!(
            "The given operator {op} is not valid. It must be one of the following: 'eq', 'neq', 'lt', 'lte', 'gt', or 'gte'."
        )));
    }
    Ok(Some((op, micros)))
}

fn expiry_matches(filter: &Option<(String, i64)>, expires_at: Option<i64>) -> bool {
    let Some((op, wanted)) = filter else {
        return true;
    };
    let Some(expires) = expires_at.map(|s| s.saturating_mul(1_000_000)) else {
        return false;
    };
    match op.as_str() {
        "lt" => expires < *wanted,
        "lte" => expires <= *wanted,
        "gt" => expires > *wanted,
        "gte" => expires >= *wanted,
        "eq" => expires == *wanted,
        _ => expires != *wanted,
    }
}

/// Renders a user list after the filters SQL does not apply: the caller's domain
/// for domain-scoped tokens, inexact name matches, and password expiry.
pub fn user_collection(
    req: &HttpRequest,
    state: &AppState,
    users: Vec<User>,
    caller_domain: Option<&str>,
) -> ApiResult<HttpResponse> {
    let expiry = password_expiry_filter(req)?;
    let rendered: Vec<Value> = users
        .iter()
        .filter(|u| caller_domain.is_none_or(|d| u.domain_id == d))
        .filter(|u| inexact_match(req, "name", &u.name))
        .filter(|u| expiry_matches(&expiry, u.password_expires_at))
        .map(|u| render(req, state, u))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"users": rendered, "links": collection_links(req, state)}),
    ))
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let domain = token_domain(&caller);
    // Keystone: a domain-scoped caller is checked against its own domain, and sees
    // only that domain's users whatever `domain_id` it asks for.
    let target = match &domain {
        Some(d) => json!({ "domain_id": d }),
        None => json!({}),
    };
    enforce_with_args(&state, &caller, "identity:list_users", target, &[])?;
    let mut filter = user_filter(&req);
    if filter.domain_id.is_none() {
        filter.domain_id = domain.clone();
    }
    // Federated attributes select shadow users only (Keystone's
    // `_handle_shadow_and_local_users`); this server has none.
    let federated = ["idp_id", "protocol_id", "unique_id"]
        .iter()
        .any(|f| query_value(&req, f).is_some());
    let users = if federated {
        Vec::new()
    } else {
        state.identity.list_users(&filter).await?
    };
    user_collection(&req, &state, users, domain.as_deref())
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let user = state.identity.find_user(&UserRef::Id(path.clone())).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:get_user",
        user_target(user.as_ref()),
        &[("user_id", &path)],
    )?;
    let user = user.ok_or_else(|| user_not_found(&path))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"user": render(&req, &state, &user)}),
    ))
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let raw = strict_entity_body(&req, payload, &state, "user").await?;
    let body = normalize_keys(&raw);
    let name = name_attr(&body, "name", NAME_MAX)?
        .ok_or_else(|| invalid("user", "'name' is a required property"))?;
    let domain_id = id_string_attr(&body, "domain_id", false)?.flatten();
    let enabled = bool_attr(&body, "enabled")?.unwrap_or(true);
    let default_project_id = id_string_attr(&body, "default_project_id", true)?.flatten();
    // `description` is validated here and kept, like any other attribute, in `extra`.
    description_attr(&body)?;
    let password = string_attr(&body, "password", true)?.flatten();
    unsupported_user_attrs(&body)?;
    // Keystone enforces on the body as sent, before filling in the domain: a domain
    // manager must name its domain explicitly.
    enforce_with_args(
        &state,
        &caller,
        "identity:create_user",
        json!({ "user": raw }),
        &[],
    )?;
    let domain_id = domain_id.unwrap_or_else(|| {
        token_domain(&caller).unwrap_or_else(|| state.settings.identity.default_domain_id.clone())
    });
    let extra = extra_attrs(&body, KNOWN);
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
    };
    let user = state
        .identity
        .create_user(user, password.as_deref())
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"user": render(&req, &state, &user)}),
    ))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let found = state.identity.find_user(&UserRef::Id(path.clone())).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:update_user",
        user_target(found.as_ref()),
        &[("user_id", &path)],
    )?;
    let body = strict_entity_body(&req, payload, &state, "user").await?;
    if body.is_empty() {
        return Err(invalid("user", "{} does not have enough properties"));
    }
    let name = name_attr(&body, "name", NAME_MAX)?;
    let enabled = bool_attr(&body, "enabled")?;
    let default_project_id = id_string_attr(&body, "default_project_id", true)?;
    description_attr(&body)?;
    let password = string_attr(&body, "password", true)?;
    let id = string_attr(&body, "id", true)?;
    let domain_id = string_attr(&body, "domain_id", true)?;
    unsupported_user_attrs(&body)?;
    let mut user = found.ok_or_else(|| user_not_found(&path))?;
    if let Some(Some(id)) = id {
        if id != user.id {
            return Err(ApiError::BadRequest("Cannot change ID".into()));
        }
    }
    // Keystone's `_require_matching_domain_id`: a user never moves between domains.
    let named_domain = match domain_id {
        Some(d) if d.as_deref() != Some(user.domain_id.as_str()) => {
            return Err(ApiError::BadRequest("Cannot change Domain ID".into()))
        }
        Some(_) => true,
        None => false,
    };
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
    Ok(json_response(
        StatusCode::OK,
        &json!({"user": render(&req, &state, &user)}),
    ))
}

pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let found = state.identity.find_user(&UserRef::Id(path.clone())).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:delete_user",
        user_target(found.as_ref()),
        &[("user_id", &path)],
    )?;
    if found.is_none() {
        return Err(user_not_found(&path));
    }
    state.identity.delete_user(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /v3/users/{user_id}/password. Keystone marks this API unenforced and asks for
/// no token: the original password is the credential, so a user whose password
/// expired (and who therefore cannot get a token) can still replace it.
pub async fn change_password(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = strict_entity_body(&req, payload, &state, "user").await?;
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
    state
        .identity
        .change_password(&path, &original, &new)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GET /v3/users/{user_id}/projects: projects with a role assignment, as Keystone's
/// `list_projects_for_user` (disabled ones included), filtered by `domain_id`,
/// `enabled` and `name`.
pub async fn projects(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let found = state.identity.find_user(&UserRef::Id(path.clone())).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:list_user_projects",
        user_target(found.as_ref()),
        &[("user_id", &path)],
    )?;
    let domain_id = query_value(&req, "domain_id");
    let name = query_value(&req, "name");
    let enabled = bool_filter(&req, "enabled");
    let projects: Vec<Project> = state
        .identity
        .list_projects_for_user(&path)
        .await?
        .into_iter()
        .filter(|p| domain_id.as_ref().is_none_or(|d| &p.domain_id == d))
        .filter(|p| name.as_ref().is_none_or(|n| &p.name == n))
        .filter(|p| enabled.is_none_or(|e| p.enabled == e))
        .filter(|p| inexact_match(&req, "name", &p.name))
        .collect();
    super::projects::render_collection(&req, &state, projects, collection_links(&req, &state)).await
}

/// GET /v3/users/{user_id}/groups; a domain-scoped caller sees only its domain's
/// groups. Each group carries `membership_expires_at` (always null: memberships
/// here do not expire), as Keystone's `list_groups_for_user`.
pub async fn groups(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let found = state.identity.find_user(&UserRef::Id(path.clone())).await?;
    enforce_with_args(
        &state,
        &caller,
        "identity:list_groups_for_user",
        user_target(found.as_ref()),
        &[("user_id", &path)],
    )?;
    let domain = token_domain(&caller);
    let name = query_value(&req, "name");
    let rendered: Vec<Value> = state
        .identity
        .list_groups_for_user(&path)
        .await?
        .iter()
        .filter(|g| domain.as_ref().is_none_or(|d| &g.domain_id == d))
        .filter(|g| name.as_ref().is_none_or(|n| &g.name == n))
        .filter(|g| inexact_match(&req, "name", &g.name))
        .map(|g| {
            let mut v = render_group(&req, &state, g);
            v["membership_expires_at"] = Value::Null;
            v
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"groups": rendered, "links": collection_links(&req, &state)}),
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/users")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/users/{user_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/users/{user_id}/password")
            .route(web::post().to(change_password))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/users/{user_id}/projects")
            .route(web::get().to(projects))
            .route(web::head().to(projects))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v3/users/{user_id}/groups")
            .route(web::get().to(groups))
            .route(web::head().to(groups))
            .default_service(web::to(method_not_allowed)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keys_maps_hyphens_and_colons() {
        let m = json!({"domain-id": "d", "a:b": 1, "name": "n"});
        let n = normalize_keys(m.as_object().expect("object"));
        assert_eq!(n.get("domain_id"), Some(&json!("d")));
        assert_eq!(n.get("a_b"), Some(&json!(1)));
        assert_eq!(n.get("name"), Some(&json!("n")));
    }

    #[test]
    fn id_strings_follow_keystone_pattern() {
        let ok = json!({"domain_id": "abc-DEF-123"});
        assert!(id_string_attr(ok.as_object().expect("o"), "domain_id", false).is_ok());
        for bad in [json!(""), json!("a b"), json!("x".repeat(65)), json!(7)] {
            let obj = json!({ "domain_id": bad });
            assert!(
                id_string_attr(obj.as_object().expect("o"), "domain_id", false).is_err(),
                "{bad}"
            );
        }
        let null = json!({"default_project_id": null});
        assert_eq!(
            id_string_attr(null.as_object().expect("o"), "default_project_id", true)
                .expect("nullable"),
            Some(None)
        );
    }

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
