//! /v3/roles, /v3/roles/{prior}/implies[/{implied}] and /v3/role_inferences
//! (Keystone's `keystone/api/roles.py` and `role_inferences.py`).
//!
//! Policy targets follow Keystone: a role is checked with `identity:*_role`, a
//! domain-specific role with `identity:*_domain_role`, both with the role as
//! `target.role`; implied-role rules see `target.prior_role` and `target.implied_role`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::input::{
    extra_attrs, id_attr, invalid, name_attr, non_empty, require_same_id, string_attr, JsonBody,
    TopLevel,
};
use super::kit::{
    collection, entity, json_response, no_content, resource, Caller, Links, Query, Router, Target,
};
use super::AppState;
use crate::assignment::{check_immutable_update, role_options};
use crate::model::{new_id, Role};

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

pub fn render(links: &Links, r: &Role) -> Value {
    let mut m = role_fields(r);
    m.insert("links".into(), links.entity("roles", &r.id));
    Value::Object(m)
}

/// A role's attributes without links: the API's role, and a trust token's roles.
pub fn role_fields(r: &Role) -> Map<String, Value> {
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
    m
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

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct RoleQuery {
    name: Option<String>,
    domain_id: Option<String>,
}

pub async fn list(
    caller: Caller,
    query: Query<RoleQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let domain_id = query.domain_id.as_deref().filter(|d| !d.is_empty());
    let action = if domain_id.is_some() {
        "identity:list_domain_roles"
    } else {
        "identity:list_roles"
    };
    caller.enforce(action, Target::none())?;
    let roles = state
        .assignment
        .list_roles(query.name.as_deref(), domain_id)
        .await?;
    let rendered = roles.iter().map(|r| render(&links, r)).collect();
    Ok(collection(&links, "roles", rendered, None))
}

pub async fn create(
    caller: Caller,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("role", TopLevel::Open)?;
    let name = name_attr(&body, "name", NAME_MAX)?
        .ok_or_else(|| invalid("role", "'name' is a required property"))?;
    let domain_id = id_attr(&body, "domain_id", true)?.flatten();
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
        caller.enforce(
            "identity:create_domain_role",
            Target::of("role", role_target(&role)),
        )?;
    } else {
        caller.enforce("identity:create_role", Target::none())?;
    }
    let role = state.assignment.create_role(role).await?;
    Ok(entity(StatusCode::CREATED, "role", render(&links, &role)))
}

/// The rule for `verb` on this role: `identity:<verb>_role` or `_domain_role`.
fn role_action(verb: &str, role: &Role) -> String {
    if role.domain_id.is_some() {
        format!("identity:{verb}_domain_role")
    } else {
        format!("identity:{verb}_role")
    }
}

/// 404 for an unknown role (Keystone loads the policy target before enforcing),
/// then 403.
async fn authorized_role(
    caller: &Caller,
    state: &AppState,
    id: &str,
    verb: &str,
) -> ApiResult<Role> {
    let role = state.assignment.get_role(id).await?;
    caller.enforce(
        &role_action(verb, &role),
        Target::of("role", role_target(&role)),
    )?;
    Ok(role)
}

pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let role = authorized_role(&caller, &state, &path, "get").await?;
    Ok(entity(StatusCode::OK, "role", render(&links, &role)))
}

pub async fn update(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let mut role = authorized_role(&caller, &state, &path, "update").await?;
    let body = json.entity("role", TopLevel::Open)?;
    non_empty(&body, "role")?;
    let name = name_attr(&body, "name", NAME_MAX)?;
    let description = string_attr(&body, "description", true)?;
    let domain_id = id_attr(&body, "domain_id", true)?;
    let options = options_attr(&body)?;
    require_same_id(&body, &role.id)?;
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
    Ok(entity(StatusCode::OK, "role", render(&links, &role)))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let role = authorized_role(&caller, &state, &path, "delete").await?;
    state.assignment.delete_role(&role.id).await?;
    Ok(no_content())
}

/// `{"id", "links": {"self"}, "name"}` for either side of a rule.
fn rule_role(links: &Links, r: &Role) -> Value {
    json!({"id": r.id, "links": links.entity("roles", &r.id), "name": r.name})
}

/// 404 for an unknown prior (then implied) role, then 403: Keystone builds the
/// target (both roles) before enforcing.
async fn authorized_rule(
    caller: &Caller,
    state: &AppState,
    action: &str,
    prior_id: &str,
    implied_id: Option<&str>,
) -> ApiResult<(Role, Option<Role>)> {
    let prior = state.assignment.get_role(prior_id).await?;
    let implied = match implied_id {
        Some(id) => Some(state.assignment.get_role(id).await?),
        None => None,
    };
    let target = Target::of("prior_role", role_target(&prior))
        .with_found("implied_role", implied.as_ref().map(role_target));
    caller.enforce(action, target)?;
    Ok((prior, implied))
}

fn inference_body(links: &Links, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": {
            "prior_role": rule_role(links, prior),
            "implies": rule_role(links, implied),
        },
        "links": {"self": links.at(&format!("/v3/roles/{}/implies/{}", prior.id, implied.id))},
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
    caller: Caller,
    path: web::Path<(String, String)>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    let action = "identity:create_implied_role";
    let (prior, implied) = pair(authorized_rule(&caller, &state, action, &p, Some(&i)).await?)?;
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
        &inference_body(&links, &prior, &implied),
    ))
}

pub async fn get_rule(
    caller: Caller,
    path: web::Path<(String, String)>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    let action = "identity:get_implied_role";
    let (prior, implied) = pair(authorized_rule(&caller, &state, action, &p, Some(&i)).await?)?;
    state.assignment.check_implied_role(&p, &i).await?;
    Ok(json_response(
        StatusCode::OK,
        &inference_body(&links, &prior, &implied),
    ))
}

/// HEAD answers 204 (Keystone documents and keeps this), after both
/// `check_implied_role` and `get_implied_role` allowed it.
pub async fn head_rule(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    authorized_rule(&caller, &state, "identity:check_implied_role", &p, Some(&i)).await?;
    authorized_rule(&caller, &state, "identity:get_implied_role", &p, Some(&i)).await?;
    state.assignment.check_implied_role(&p, &i).await?;
    Ok(no_content())
}

pub async fn delete_rule(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (p, i) = path.into_inner();
    authorized_rule(
        &caller,
        &state,
        "identity:delete_implied_role",
        &p,
        Some(&i),
    )
    .await?;
    state.assignment.delete_implied_role(&p, &i).await?;
    Ok(no_content())
}

pub async fn list_rules(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let action = "identity:list_implied_roles";
    let (prior, _) = authorized_rule(&caller, &state, action, &path, None).await?;
    let implied: Vec<Value> = state
        .assignment
        .list_implied_roles(&prior.id)
        .await?
        .iter()
        .map(|r| rule_role(&links, r))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "role_inference": {"prior_role": rule_role(&links, &prior), "implies": implied},
            "links": {"self": links.at(&format!("/v3/roles/{}/implies", prior.id))},
        }),
    ))
}

pub async fn list_inferences(
    caller: Caller,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_role_inference_rules", Target::none())?;
    let rules: Vec<Value> = state
        .assignment
        .list_role_inferences()
        .await?
        .iter()
        .map(|(prior, implied)| {
            json!({
                "prior_role": rule_role(&links, prior),
                "implies": implied.iter().map(|r| rule_role(&links, r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"role_inferences": rules}),
    ))
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/roles").get(list).post(create))
        .add(
            resource("/v3/roles/{role_id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .add(resource("/v3/roles/{prior_role_id}/implies").get(list_rules))
        .add(
            resource("/v3/roles/{prior_role_id}/implies/{implied_role_id}")
                .put(put_rule)
                .get(get_rule)
                .head(head_rule)
                .delete(delete_rule),
        )
        .add(resource("/v3/role_inferences").get(list_inferences));
}
