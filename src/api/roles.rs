//! /v3/roles, /v3/roles/{prior}/implies[/{implied}] and /v3/role_inferences
//! (Keystone's `keystone/api/roles.py` and `role_inferences.py`).
//!
//! Policy targets follow Keystone: a role is checked with `identity:*_role`, a
//! domain-specific role with `identity:*_domain_role`, both with the role as
//! `target.role`; implied-role rules see `target.prior_role` and `target.implied_role`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::common::{
    authorize, caller, collection_links, enforce, entity_body, entity_links, extra_attrs, invalid,
    name_attr, new_id, query_value, string_attr,
};
use super::error::{ApiError, ApiResult};
use super::{base_url, json_response, AppState};
use crate::assignment::{check_immutable_update, role_options};
use crate::model::Role;

/// Attributes with a meaning of their own; everything else is free-form `extra`.
const KNOWN: &[&str] = &["id", "name", "domain_id", "description", "options", "links"];

/// Keystone's role name limit (`role.name` is `String(255)`).
const NAME_MAX: usize = 255;

/// The role as policy sees it (Keystone's role dict, without links).
pub fn role_target(r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": r.domain_id,
        "description": description(r),
        "options": role_options(r),
    })
}

/// Keystone stores a missing description as NULL; our column is NOT NULL, so an
/// empty description is shown as null.
fn description(r: &Role) -> Value {
    if r.description.is_empty() {
        Value::Null
    } else {
        Value::String(r.description.clone())
    }
}

pub fn render(req: &HttpRequest, state: &AppState, r: &Role) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    m.insert("name".into(), json!(r.name));
    m.insert("domain_id".into(), json!(r.domain_id));
    m.insert("description".into(), description(r));
    m.insert("options".into(), Value::Object(role_options(r)));
    for (k, v) in &r.extra {
        if k != "options" {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    m.insert("links".into(), entity_links(req, state, "roles", &r.id));
    Value::Object(m)
}

/// `parameter_types.domain_id`: 1..64 characters of `[a-zA-Z0-9-]`.
pub fn valid_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn domain_id_attr(body: &Map<String, Value>) -> ApiResult<Option<Option<String>>> {
    match string_attr(body, "domain_id", true)? {
        Some(Some(d)) if !valid_id(&d) => Err(invalid(
            "domain_id",
            &format!("'{d}' does not match '^[a-zA-Z0-9-]+$'"),
        )),
        other => Ok(other),
    }
}

/// `options`: only `immutable`, a boolean or null (Keystone's role options registry).
fn options_attr(body: &Map<String, Value>) -> ApiResult<Option<Map<String, Value>>> {
    match body.get("options") {
        None => Ok(None),
        Some(Value::Object(o)) => {
            for (k, v) in o {
                if k != "immutable" {
                    return Err(invalid(
                        "options",
                        &format!("Additional properties are not allowed ('{k}' was unexpected)"),
                    ));
                }
                if !matches!(v, Value::Bool(_) | Value::Null) {
                    return Err(invalid(
                        "immutable",
                        &format!("{v} is not of type 'boolean'"),
                    ));
                }
            }
            Ok(Some(o.clone()))
        }
        Some(other) => Err(invalid(
            "options",
            &format!("{other} is not of type 'object'"),
        )),
    }
}

/// Applies an options patch: a null value removes the option (Keystone's mapper).
fn merge_options(extra: &mut Map<String, Value>, patch: Map<String, Value>) {
    let mut current = match extra.remove("options") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in patch {
        if v.is_null() {
            current.remove(&k);
        } else {
            current.insert(k, v);
        }
    }
    if !current.is_empty() {
        extra.insert("options".into(), Value::Object(current));
    }
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let domain_id = query_value(&req, "domain_id").filter(|d| !d.is_empty());
    let action = if domain_id.is_some() {
        "identity:list_domain_roles"
    } else {
        "identity:list_roles"
    };
    authorize(&req, &state, action, json!({})).await?;
    let name = query_value(&req, "name");
    let roles = state
        .assignment
        .list_roles(name.as_deref(), domain_id.as_deref())
        .await?;
    let rendered: Vec<Value> = roles.iter().map(|r| render(&req, &state, r)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"roles": rendered, "links": collection_links(&req, &state)}),
    ))
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let caller = caller(&req, &state).await?;
    let body = entity_body(&req, payload, &state, "role").await?;
    let name = name_attr(&body, "name", NAME_MAX)?
        .ok_or_else(|| invalid("role", "'name' is a required property"))?;
    let domain_id = domain_id_attr(&body)?.flatten();
    let mut extra = extra_attrs(&body, KNOWN);
    if let Some(options) = options_attr(&body)? {
        merge_options(&mut extra, options);
    }
    let role = Role {
        // Keystone always assigns the id; one in the body is ignored.
        id: new_id(),
        name,
        domain_id,
        description: string_attr(&body, "description", true)?
            .flatten()
            .unwrap_or_default(),
        extra,
    };
    if role.domain_id.is_some() {
        enforce(
            &state,
            &caller,
            "identity:create_domain_role",
            json!({"role": role_target(&role)}),
        )?;
    } else {
        enforce(&state, &caller, "identity:create_role", json!({}))?;
    }
    let role = state.assignment.create_role(role).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"role": render(&req, &state, &role)}),
    ))
}

/// The rule for `verb` on this role: `identity:<verb>_role` or `_domain_role`.
fn role_action(verb: &str, role: &Role) -> String {
    if role.domain_id.is_some() {
        format!("identity:{verb}_domain_role")
    } else {
        format!("identity:{verb}_role")
    }
}

/// 401 for no caller, then 404 for an unknown role (Keystone loads the policy
/// target before enforcing), then 403.
async fn authorized_role(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    verb: &str,
) -> ApiResult<Role> {
    let caller = caller(req, state).await?;
    let role = state.assignment.get_role(id).await?;
    enforce(
        state,
        &caller,
        &role_action(verb, &role),
        json!({"role": role_target(&role)}),
    )?;
    Ok(role)
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let role = authorized_role(&req, &state, &path, "get").await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"role": render(&req, &state, &role)}),
    ))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let mut role = authorized_role(&req, &state, &path, "update").await?;
    let body = entity_body(&req, payload, &state, "role").await?;
    if body.is_empty() {
        return Err(invalid("role", "{} does not have enough properties"));
    }
    let name = name_attr(&body, "name", NAME_MAX)?;
    let description = string_attr(&body, "description", true)?;
    let domain_id = domain_id_attr(&body)?;
    let options = options_attr(&body)?;
    if body
        .get("id")
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(role.id.as_str()))
    {
        return Err(ApiError::BadRequest("Cannot change ID".into()));
    }
    check_immutable_update(&role, &body)?;
    if domain_id.is_some_and(|d| d != role.domain_id) {
        return Err(ApiError::BadRequest(
            "Update of `domain_id` is not allowed.".into(),
        ));
    }
    if let Some(name) = name {
        role.name = name;
    }
    if let Some(description) = description {
        role.description = description.unwrap_or_default();
    }
    if let Some(options) = options {
        merge_options(&mut role.extra, options);
    }
    role.extra.extend(extra_attrs(&body, KNOWN));
    let role = state.assignment.update_role(role).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"role": render(&req, &state, &role)}),
    ))
}

pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let role = authorized_role(&req, &state, &path, "delete").await?;
    state.assignment.delete_role(&role.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{"id", "links": {"self"}, "name"}` for either side of a rule.
fn rule_role(req: &HttpRequest, state: &AppState, r: &Role) -> Value {
    json!({"id": r.id, "links": entity_links(req, state, "roles", &r.id), "name": r.name})
}

/// 401, then 404 for an unknown prior (then implied) role, then 403: Keystone
/// builds the target (both roles) before enforcing.
async fn authorized_rule(
    req: &HttpRequest,
    state: &AppState,
    action: &str,
    prior_id: &str,
    implied_id: Option<&str>,
) -> ApiResult<(Role, Option<Role>)> {
    let caller = caller(req, state).await?;
    let prior = state.assignment.get_role(prior_id).await?;
    let implied = match implied_id {
        Some(id) => Some(state.assignment.get_role(id).await?),
        None => None,
    };
    let mut target = json!({"prior_role": role_target(&prior)});
    if let Some(i) = &implied {
        target["implied_role"] = role_target(i);
    }
    enforce(state, &caller, action, target)?;
    Ok((prior, implied))
}

fn inference_body(req: &HttpRequest, state: &AppState, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": {
            "prior_role": rule_role(req, state, prior),
            "implies": rule_role(req, state, implied),
        },
        "links": {"self": format!("{}/v3/roles/{}/implies/{}", base_url(req, &state.settings), prior.id, implied.id)},
    })
}

/// Both roles of a `/implies/{implied}` path; the implied one is always present.
fn pair((prior, implied): (Role, Option<Role>)) -> ApiResult<(Role, Role)> {
    match implied {
        Some(i) => Ok((prior, i)),
        None => Err(ApiError::NoSuchRoute),
    }
}

pub async fn put_rule(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    let (prior, implied) =
        pair(authorized_rule(&req, &state, "identity:create_implied_role", &p, Some(&i)).await?)?;
    state
        .assignment
        .create_implied_role(
            &prior,
            &implied,
            &state.settings.assignment.prohibited_implied_role,
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &inference_body(&req, &state, &prior, &implied),
    ))
}

pub async fn get_rule(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    let (prior, implied) =
        pair(authorized_rule(&req, &state, "identity:get_implied_role", &p, Some(&i)).await?)?;
    state.assignment.check_implied_role(&p, &i).await?;
    Ok(json_response(
        StatusCode::OK,
        &inference_body(&req, &state, &prior, &implied),
    ))
}

/// HEAD answers 204 (Keystone documents and keeps this), after both
/// `check_implied_role` and `get_implied_role` allowed it.
pub async fn head_rule(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    authorized_rule(&req, &state, "identity:check_implied_role", &p, Some(&i)).await?;
    authorized_rule(&req, &state, "identity:get_implied_role", &p, Some(&i)).await?;
    state.assignment.check_implied_role(&p, &i).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete_rule(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    authorized_rule(&req, &state, "identity:delete_implied_role", &p, Some(&i)).await?;
    state.assignment.delete_implied_role(&p, &i).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_rules(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (prior, _) =
        authorized_rule(&req, &state, "identity:list_implied_roles", &path, None).await?;
    let implied: Vec<Value> = state
        .assignment
        .list_implied_roles(&prior.id)
        .await?
        .iter()
        .map(|r| rule_role(&req, &state, r))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "role_inference": {"prior_role": rule_role(&req, &state, &prior), "implies": implied},
            "links": {"self": format!("{}/v3/roles/{}/implies", base_url(&req, &state.settings), prior.id)},
        }),
    ))
}

pub async fn list_inferences(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authorize(
        &req,
        &state,
        "identity:list_role_inference_rules",
        json!({}),
    )
    .await?;
    let rules: Vec<Value> = state
        .assignment
        .list_role_inferences()
        .await?
        .iter()
        .map(|(prior, implied)| {
            json!({
                "prior_role": rule_role(&req, &state, prior),
                "implies": implied.iter().map(|r| rule_role(&req, &state, r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"role_inferences": rules}),
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v3/roles")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v3/roles/{role_id}")
            .route(web::get().to(get))
            .route(web::head().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(
        web::resource("/v3/roles/{prior_role_id}/implies")
            .route(web::get().to(list_rules))
            .route(web::head().to(list_rules)),
    )
    .service(
        web::resource("/v3/roles/{prior_role_id}/implies/{implied_role_id}")
            .route(web::put().to(put_rule))
            .route(web::get().to(get_rule))
            .route(web::head().to(head_rule))
            .route(web::delete().to(delete_rule)),
    )
    .service(
        web::resource("/v3/role_inferences")
            .route(web::get().to(list_inferences))
            .route(web::head().to(list_inferences)),
    );
}
