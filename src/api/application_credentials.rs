//! `/v3/users/{user_id}/application_credentials[/{id}]` and
//! `/v3/users/{user_id}/access_rules[/{id}]` (`keystone/api/users.py`): bodies checked
//! against Keystone's schema first, then policy, then Keystone's delegation guards.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    bool_attr, bounded_string, closed, invalid, name_attr, valid_id, JsonBody, TopLevel,
};
use super::kit::{
    collection, entity, no_content, resource, Caller, Links, QueryPairs, Router, Target,
};
use super::render::AccessRuleView;
use super::AppState;
use crate::application_credential::{CreateRequest, RoleSpec};
use crate::assignment::role_options;
use crate::error::Error;
use crate::identity::UserRef;
use crate::model::{
    new_id, AccessRule, AccessRuleFilter, AccessRuleSpec, ApplicationCredential, Role,
};
use crate::token::provider::Scope;

const METHODS: &[&str] = &["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"];

const CREATE_FIELDS: &[&str] = &[
    "id",
    "secret",
    "name",
    "description",
    "expires_at",
    "project_id",
    "access_rules",
    "unrestricted",
    "system",
    "roles",
];

fn role_view(r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": r.domain_id,
        "description": if r.description.is_empty() { Value::Null } else { json!(r.description) },
        "options": role_options(r),
    })
}

/// Epoch microseconds as Keystone shows a naive UTC datetime: `%Y-%m-%dT%H:%M:%S.%f`.
fn micros_time(us: i64) -> Value {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()))
        .unwrap_or(Value::Null)
}

fn rule_view(r: &AccessRule) -> Value {
    serde_json::to_value(AccessRuleView::of(r)).unwrap_or(Value::Null)
}

fn render(
    links: &Links,
    c: &ApplicationCredential,
    roles: &HashMap<String, Role>,
    secret: Option<&str>,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert("name".into(), json!(c.name));
    m.insert("description".into(), json!(c.description));
    m.insert(
        "expires_at".into(),
        c.expires_at.map(micros_time).unwrap_or(Value::Null),
    );
    m.insert("project_id".into(), json!(c.project_id));
    // Keystone declares a whitelist without these but never applies it: every answer
    // shows the owner and `system`.
    m.insert("user_id".into(), json!(c.user_id));
    m.insert("system".into(), json!(c.system));
    m.insert(
        "roles".into(),
        Value::Array(
            c.role_ids
                .iter()
                .filter_map(|id| roles.get(id))
                .map(role_view)
                .collect(),
        ),
    );
    m.insert("unrestricted".into(), json!(c.unrestricted));
    if let Some(rules) = &c.access_rules {
        m.insert(
            "access_rules".into(),
            Value::Array(rules.iter().map(rule_view).collect()),
        );
    }
    if let Some(s) = secret {
        m.insert("secret".into(), json!(s));
    }
    m.insert(
        "links".into(),
        json!({"self": links.at(&format!("/v3/users/{}/application_credentials/{}", c.user_id, c.id))}),
    );
    Value::Object(m)
}

fn render_rule(links: &Links, user_id: &str, r: &AccessRule) -> Value {
    let mut v = rule_view(r);
    if let Value::Object(m) = &mut v {
        m.insert(
            "links".into(),
            json!({"self": links.at(&format!("/v3/users/{user_id}/access_rules/{}", r.id))}),
        );
    }
    v
}

/// `_block_delegated_token_app_creds`: trust, OAuth1, EC2 and other delegated tokens
/// may not manage application credentials or access rules (application-credential
/// tokens are judged by `check_unrestricted` instead).
fn block_delegated(caller: &Caller) -> ApiResult<()> {
    let methods = &caller.payload.methods;
    if methods.iter().any(|m| m == "application_credential") {
        return Ok(());
    }
    caller.refuse_delegated(
        "Cannot manage application credentials with a token issued via delegation.",
    )
}

/// `_check_unrestricted_application_credential`.
fn check_unrestricted(caller: &Caller) -> ApiResult<()> {
    if let Some(c) = &caller.application_credential {
        if !c.unrestricted {
            return Err(Error::ForbiddenAction(
                "You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional application credentials..".into(),
            )
            .into());
        }
    }
    Ok(())
}

/// `parameter_types.id_string` at `path`.
fn id_string(v: &Value, path: &str) -> ApiResult<String> {
    match v {
        Value::String(s) if s.chars().count() > 64 => {
            Err(invalid(path, &format!("'{s}' is too long")))
        }
        Value::String(s) if !valid_id(s) => Err(invalid(
            path,
            &format!("'{s}' does not match '^[a-zA-Z0-9-]+$'"),
        )),
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(path, &format!("{other} is not of type 'string'"))),
    }
}

fn parse_roles(v: &Value) -> ApiResult<Vec<RoleSpec>> {
    let Value::Array(items) = v else {
        return Err(invalid("roles", &format!("{v} is not of type 'array'")));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("roles/{i}");
        let Value::Object(o) = item else {
            return Err(invalid(&path, &format!("{item} is not of type 'object'")));
        };
        closed(o, &["id", "name"], &path)?;
        if o.is_empty() {
            return Err(invalid(&path, "{} does not have enough properties"));
        }
        if o.len() > 1 {
            return Err(invalid(&path, &format!("{item} has too many properties")));
        }
        if let Some(id) = o.get("id") {
            out.push(RoleSpec::Id(id_string(id, &format!("{path}/id"))?));
        } else if let Some(name) = name_attr(o, "name", 255)? {
            if name.is_empty() {
                return Err(invalid("name", "'' is too short"));
            }
            out.push(RoleSpec::Name(name));
        }
    }
    Ok(out)
}

fn parse_access_rules(v: &Value) -> ApiResult<Vec<AccessRuleSpec>> {
    let Value::Array(items) = v else {
        return Err(invalid(
            "access_rules",
            &format!("{v} is not of type 'array'"),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("access_rules/{i}");
        let Value::Object(o) = item else {
            return Err(invalid(&path, &format!("{item} is not of type 'object'")));
        };
        let id = o
            .get("id")
            .map(|v| id_string(v, &format!("{path}/id")))
            .transpose()?;
        let service = o
            .get("service")
            .map(|v| id_string(v, &format!("{path}/service")))
            .transpose()?;
        let rule_path = match o.get("path") {
            None => None,
            Some(Value::String(s)) if s.chars().count() > 225 => {
                return Err(invalid(
                    &format!("{path}/path"),
                    &format!("'{s}' is too long"),
                ))
            }
            Some(Value::String(s)) if !s.starts_with('/') => {
                return Err(invalid(
                    &format!("{path}/path"),
                    &format!("'{s}' does not match '^/\\\\.*'"),
                ))
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(invalid(
                    &format!("{path}/path"),
                    &format!("{other} is not of type 'string'"),
                ))
            }
        };
        let method = match o.get("method") {
            None => None,
            Some(Value::String(s)) if METHODS.contains(&s.as_str()) => Some(s.clone()),
            Some(other) => {
                return Err(invalid(
                    &format!("{path}/method"),
                    &format!(
                        "{other} is not one of ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT']"
                    ),
                ))
            }
        };
        out.push(AccessRuleSpec {
            id_given: id.is_some(),
            id: id.unwrap_or_else(new_id),
            service,
            path: rule_path,
            method,
        });
    }
    Ok(out)
}

/// Keystone's `parse_expiration_date`: ISO 8601, UTC when no offset is given.
fn parse_expiry(s: &str) -> ApiResult<i64> {
    let bad = || {
        ApiError::from(Error::validation(
            "Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
        ))
    };
    let trimmed = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(trimmed) {
        return Ok(t.timestamp_micros());
    }
    let naive = trimmed.strip_suffix('Z').unwrap_or(trimmed);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(naive, fmt) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(naive, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(bad())
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    name: Option<String>,
}

pub async fn list(
    caller: Caller,
    path: web::Path<String>,
    query: QueryPairs,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    caller.enforce(
        "identity:list_application_credentials",
        Target::none().arg("user_id", &user_id),
    )?;
    block_delegated(&caller)?;
    let creds = state
        .application_credentials
        .list(&user_id, query.first("name"))
        .await?;
    let roles = state.application_credentials.roles_by_id().await?;
    let items = creds
        .iter()
        .map(|c| render(&links, c, &roles, None))
        .collect();
    Ok(collection(&links, "application_credentials", items, None))
}

pub async fn create(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    let body = json.entity("application_credential", TopLevel::Closed)?;
    closed(&body, CREATE_FIELDS, "application_credential")?;
    let name = name_attr(&body, "name", 255)?
        .ok_or_else(|| invalid("application_credential", "'name' is a required property"))?;
    if name.is_empty() {
        return Err(invalid("name", "'' is too short"));
    }
    let id = bounded_string(&body, "id", false, 0, usize::MAX)?.flatten();
    let secret = bounded_string(&body, "secret", true, 0, usize::MAX)?.flatten();
    let description = bounded_string(&body, "description", true, 0, usize::MAX)?.flatten();
    let expires_at = bounded_string(&body, "expires_at", true, 0, usize::MAX)?.flatten();
    bounded_string(&body, "project_id", false, 0, usize::MAX)?;
    bounded_string(&body, "system", true, 0, usize::MAX)?;
    let unrestricted = match body.get("unrestricted") {
        Some(Value::Null) => None,
        _ => bool_attr(&body, "unrestricted")?,
    };
    let roles = body.get("roles").map(parse_roles).transpose()?;
    let access_rules = body
        .get("access_rules")
        .map(parse_access_rules)
        .transpose()?
        .unwrap_or_default();
    caller.enforce(
        "identity:create_application_credential",
        Target::none().arg("user_id", &user_id),
    )?;
    block_delegated(&caller)?;
    check_unrestricted(&caller)?;
    if caller.user.id != user_id {
        return Err(Error::ForbiddenAction(
            "You are not authorized to perform the requested action: Cannot create an application credential for another user..".into(),
        )
        .into());
    }
    let Scope::Project { project, .. } = &caller.scope else {
        return Err(Error::PolicyForbidden {
            action: "identity:create_application_credential".into(),
        }
        .into());
    };
    let expires_at = match expires_at.filter(|e| !e.is_empty()) {
        Some(e) => Some(parse_expiry(&e)?),
        None => None,
    };
    let (cred, secret) = state
        .application_credentials
        .create(CreateRequest {
            user_id,
            project: project.clone(),
            token_roles: caller.roles.clone(),
            id,
            name,
            description,
            secret,
            expires_at,
            unrestricted: unrestricted.unwrap_or(false),
            roles,
            access_rules,
        })
        .await?;
    let roles = state.application_credentials.roles_by_id().await?;
    Ok(entity(
        StatusCode::CREATED,
        "application_credential",
        render(&links, &cred, &roles, Some(&secret)),
    ))
}

/// Loads the credential, enforces `action` with its owner as `user_id`
/// (Keystone's `_update_request_user_id_attribute`), then 404 unless it is the
/// path user's.
async fn authorized(
    caller: &Caller,
    state: &AppState,
    user_id: &str,
    id: &str,
    action: &str,
) -> ApiResult<ApplicationCredential> {
    let found = state.application_credentials.find(id).await?;
    let owner = found.as_ref().map_or(user_id, |c| c.user_id.as_str());
    caller.enforce(action, Target::none().arg("user_id", owner))?;
    block_delegated(caller)?;
    match found {
        Some(c) if c.user_id == user_id => Ok(c),
        _ => Err(crate::application_credential::not_found(id).into()),
    }
}

pub async fn get(
    caller: Caller,
    path: web::Path<(String, String)>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    let cred = authorized(
        &caller,
        &state,
        &user_id,
        &id,
        "identity:get_application_credential",
    )
    .await?;
    let roles = state.application_credentials.roles_by_id().await?;
    Ok(entity(
        StatusCode::OK,
        "application_credential",
        render(&links, &cred, &roles, None),
    ))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    authorized(
        &caller,
        &state,
        &user_id,
        &id,
        "identity:delete_application_credential",
    )
    .await?;
    check_unrestricted(&caller)?;
    state.application_credentials.delete(&id).await?;
    Ok(no_content())
}

/// `_build_user_target_enforcement`: the path's user, when it exists.
async fn user_target(state: &AppState, user_id: &str) -> ApiResult<Target> {
    let user = state
        .identity
        .find_user(&UserRef::Id(user_id.to_string()))
        .await?;
    Ok(super::users::user_target(user.as_ref()).arg("user_id", user_id))
}

pub async fn list_rules(
    caller: Caller,
    path: web::Path<String>,
    query: QueryPairs,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    caller.enforce(
        "identity:list_access_rules",
        user_target(&state, &user_id).await?,
    )?;
    block_delegated(&caller)?;
    let filter = AccessRuleFilter {
        service: query.first("service").map(str::to_string),
        path: query.first("path").map(str::to_string),
        method: query.first("method").map(str::to_string),
    };
    let rules = state
        .application_credentials
        .list_access_rules(&user_id, &filter)
        .await?;
    let items = rules
        .iter()
        .map(|r| render_rule(&links, &user_id, r))
        .collect();
    Ok(collection(&links, "access_rules", items, None))
}

pub async fn get_rule(
    caller: Caller,
    path: web::Path<(String, String)>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    caller.enforce(
        "identity:get_access_rule",
        user_target(&state, &user_id).await?,
    )?;
    block_delegated(&caller)?;
    let rule = state
        .application_credentials
        .get_access_rule(&user_id, &id)
        .await?;
    Ok(entity(
        StatusCode::OK,
        "access_rule",
        render_rule(&links, &user_id, &rule),
    ))
}

pub async fn delete_rule(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    caller.enforce(
        "identity:delete_access_rule",
        user_target(&state, &user_id).await?,
    )?;
    block_delegated(&caller)?;
    state
        .application_credentials
        .delete_access_rule(&user_id, &id)
        .await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(
        resource("/v3/users/{user_id}/application_credentials")
            .get(list)
            .post(create),
    )
    .add(
        resource("/v3/users/{user_id}/application_credentials/{application_credential_id}")
            .get(get)
            .delete(delete),
    )
    .add(resource("/v3/users/{user_id}/access_rules").get(list_rules))
    .add(
        resource("/v3/users/{user_id}/access_rules/{access_rule_id}")
            .get(get_rule)
            .delete(delete_rule),
    );
}
