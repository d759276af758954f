//! /v3/OS-TRUST/trusts: Keystone's `api/trusts.py` (create, list with the trustor /
//! trustee filters, get, delete, the trust's roles).
//!
//! No delegated token may touch these routes: an application-credential token (any
//! payload with an application credential id, CVE-2026-43000) or a token obtained
//! with a delegated method (OAuth1, EC2). Keystone checks that after the policy and the
//! trust lookup; keystone-rs checks it first, so such a token learns nothing about
//! which trusts exist (docs/compatibility.md).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::error::ApiResult;
use super::kit::input::{bool_attr, invalid, string_attr, JsonBody, TopLevel};
use super::kit::query::QueryPairs;
use super::kit::{entity, json_response, no_content, resource, Caller, Links, Router, Target};
use super::AppState;
use crate::error::Error;
use crate::model::{Role, Trust, TrustFilter};
use crate::trust::{forbidden_action, Creator, RoleSpec, TrustRequest};

/// Attributes of Keystone's trust schema; anything else is kept in `extra`.
const KNOWN: &[&str] = &[
    "id",
    "trustor_user_id",
    "trustee_user_id",
    "impersonation",
    "project_id",
    "remaining_uses",
    "expires_at",
    "allow_redelegation",
    "redelegation_count",
    "redelegated_trust_id",
    "roles",
    "roles_links",
    "links",
    "deleted_at",
];

/// Keystone's `_check_delegated_token`, widened to every application-credential token.
fn refuse_delegated(caller: &Caller) -> ApiResult<()> {
    if caller.payload.app_cred_id.is_some() || crate::auth::is_delegated(&caller.payload.methods) {
        return Err(forbidden_action("Delegated tokens cannot manage trusts.").into());
    }
    Ok(())
}

/// The first checks of every route: a delegated token, then `[trust] enabled`.
fn gate(caller: &Caller, state: &AppState) -> ApiResult<()> {
    refuse_delegated(caller)?;
    state.trusts.require_enabled()?;
    Ok(())
}

/// `utils.isotime(subsecond=True)`.
fn isotime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The trust as Keystone's `to_dict` has it (what policy targets read).
fn trust_dict(t: &Trust) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &t.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(t.id));
    m.insert("trustor_user_id".into(), json!(t.trustor_user_id));
    m.insert("trustee_user_id".into(), json!(t.trustee_user_id));
    m.insert("project_id".into(), json!(t.project_id));
    m.insert("impersonation".into(), json!(t.impersonation));
    m.insert("expires_at".into(), json!(t.expires_at.map(isotime)));
    m.insert("remaining_uses".into(), json!(t.remaining_uses));
    m.insert("deleted_at".into(), Value::Null);
    m.insert("redelegated_trust_id".into(), json!(t.redelegated_trust_id));
    m.insert("redelegation_count".into(), json!(t.redelegation_count));
    m
}

fn self_link(links: &Links, id: &str) -> Value {
    json!({"self": links.at(&format!("/v3/OS-TRUST/trusts/{id}"))})
}

/// Keystone's `roles_links`; its `self` lacks `OS-TRUST/trusts` exactly as Keystone's does.
fn roles_links(links: &Links, id: &str) -> Value {
    json!({"self": links.at(&format!("/v3/{id}/roles")), "next": null, "previous": null})
}

fn render_full(links: &Links, t: &Trust, roles: &[Role]) -> Value {
    let mut m = trust_dict(t);
    m.insert(
        "roles".into(),
        Value::Array(
            roles
                .iter()
                .map(|r| super::roles::render(links, r))
                .collect(),
        ),
    );
    m.insert("roles_links".into(), roles_links(links, &t.id));
    m.insert("links".into(), self_link(links, &t.id));
    Value::Object(m)
}

fn render_summary(links: &Links, t: &Trust) -> Value {
    let mut m = trust_dict(t);
    m.insert("links".into(), self_link(links, &t.id));
    Value::Object(m)
}

fn target(t: &Trust) -> Target {
    Target::of("trust", Value::Object(trust_dict(t)))
}

/// `_build_trust_target_enforcement`: a missing, expired or used-up trust is 404
/// before the policy is checked (lp#1840288).
async fn authorized(caller: &Caller, state: &AppState, id: &str, action: &str) -> ApiResult<Trust> {
    let trust = state.trusts.get_trust(id).await?;
    caller.enforce(action, target(&trust))?;
    Ok(trust)
}

pub async fn list(
    caller: Caller,
    query: QueryPairs,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    gate(&caller, &state)?;
    let trustor = query.first("trustor_user_id").filter(|s| !s.is_empty());
    let trustee = query.first("trustee_user_id").filter(|s| !s.is_empty());
    let filter = if let Some(u) = trustor {
        caller.enforce(
            "identity:list_trusts_for_trustor",
            Target::of("trust", json!({"trustor_user_id": u})),
        )?;
        Some(TrustFilter::Trustor(u.to_string()))
    } else if let Some(u) = trustee {
        caller.enforce(
            "identity:list_trusts_for_trustee",
            Target::of("trust", json!({"trustee_user_id": u})),
        )?;
        Some(TrustFilter::Trustee(u.to_string()))
    } else {
        caller.enforce("identity:list_trusts", Target::none())?;
        // Keystone lists everything only without any query parameter at all; any
        // other parameter (an empty filter included) lists nothing.
        query.iter().next().is_none().then_some(TrustFilter::All)
    };
    let trusts = match filter {
        Some(f) => state.trusts.list_trusts(&f).await?,
        None => Vec::new(),
    };
    let items: Vec<Value> = trusts.iter().map(|t| render_summary(&links, t)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "trusts": items,
            "links": {"self": links.request_url(), "next": null, "previous": null},
        }),
    ))
}

pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    gate(&caller, &state)?;
    let trust = authorized(&caller, &state, &path, "identity:get_trust").await?;
    let roles = state.trusts.roles_of(&trust).await?;
    Ok(entity(
        StatusCode::OK,
        "trust",
        render_full(&links, &trust, &roles),
    ))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    gate(&caller, &state)?;
    let trust = authorized(&caller, &state, &path, "identity:delete_trust").await?;
    state.trusts.delete_trust(&trust.id).await?;
    Ok(no_content())
}

pub async fn list_roles(
    caller: Caller,
    path: web::Path<String>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    gate(&caller, &state)?;
    let trust = authorized(&caller, &state, &path, "identity:list_roles_for_trust").await?;
    let roles = state.trusts.roles_of(&trust).await?;
    let rendered: Vec<Value> = roles
        .iter()
        .map(|r| super::roles::render(&links, r))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"roles": rendered, "links": roles_links(&links, &trust.id)}),
    ))
}

pub async fn get_role(
    caller: Caller,
    path: web::Path<(String, String)>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    gate(&caller, &state)?;
    let (trust_id, role_id) = path.into_inner();
    let trust = authorized(&caller, &state, &trust_id, "identity:get_role_for_trust").await?;
    if !trust.role_ids.contains(&role_id) {
        return Err(Error::not_found(format!("Could not find role: {role_id}.")).into());
    }
    let role = state.assignment.get_role(&role_id).await?;
    Ok(entity(
        StatusCode::OK,
        "role",
        super::roles::render(&links, &role),
    ))
}

/// `"type": ["integer", "null"]` with a minimum.
fn int_attr(obj: &Map<String, Value>, field: &str, min: i64) -> ApiResult<Option<i64>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v < min => Err(invalid(
                field,
                &format!("{v} is less than the minimum of {min}"),
            )),
            Some(v) => Ok(Some(v)),
            None => Err(invalid(
                field,
                &format!("{n} is not of type 'integer', 'null'"),
            )),
        },
        Some(other) => Err(invalid(
            field,
            &format!("{other} is not of type 'integer', 'null'"),
        )),
    }
}

fn required_string(obj: &Map<String, Value>, field: &str) -> ApiResult<String> {
    string_attr(obj, field, false)?
        .flatten()
        .ok_or_else(|| invalid("trust", &format!("'{field}' is a required property")))
}

/// `roles`: objects with exactly one of `id` (an id string) or `name`.
fn roles_attr(obj: &Map<String, Value>) -> ApiResult<Vec<RoleSpec>> {
    let items = match obj.get("roles") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid("roles", &format!("{other} is not of type 'array'")));
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(role) = item else {
            return Err(invalid("roles", &format!("{item} is not of type 'object'")));
        };
        if let Some(extra) = role.keys().find(|k| *k != "id" && *k != "name") {
            return Err(invalid(
                "roles",
                &format!("Additional properties are not allowed ('{extra}' was unexpected)"),
            ));
        }
        if role.is_empty() {
            return Err(invalid("roles", "{} does not have enough properties"));
        }
        if role.len() > 1 {
            return Err(invalid("roles", &format!("{item} has too many properties")));
        }
        if let Some(id) = super::kit::input::id_attr(role, "id", false)?.flatten() {
            out.push(RoleSpec::Id(id));
        } else if let Some(name) = super::kit::input::name_attr(role, "name", 255)? {
            out.push(RoleSpec::Name(name));
        }
    }
    Ok(out)
}

/// Keystone's `parse_expiration_date`: a `Z` is appended when missing; anything an
/// ISO 8601 UTC timestamp parser refuses is 400.
fn expiry_attr(obj: &Map<String, Value>) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(raw) = string_attr(obj, "expires_at", true)?.flatten() else {
        return Ok(None);
    };
    let s = if raw.ends_with('Z') {
        raw.clone()
    } else {
        format!("{raw}Z")
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%MZ",
        "%Y-%m-%d %H:%M:%S%.fZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(Error::validation(
        "Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
    )
    .into())
}

pub async fn create(
    caller: Caller,
    json: JsonBody,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("trust", TopLevel::Closed)?;
    let trustor_user_id = required_string(&body, "trustor_user_id")?;
    let trustee_user_id = required_string(&body, "trustee_user_id")?;
    let impersonation = bool_attr(&body, "impersonation")?
        .ok_or_else(|| invalid("trust", "'impersonation' is a required property"))?;
    let project_id = string_attr(&body, "project_id", true)?.flatten();
    let remaining_uses = int_attr(&body, "remaining_uses", 1)?;
    let redelegation_count = int_attr(&body, "redelegation_count", 0)?;
    let allow_redelegation = match body.get("allow_redelegation") {
        Some(Value::Null) => None,
        _ => bool_attr(&body, "allow_redelegation")?,
    };
    // Accepted by the schema; the redelegated trust is taken from the token.
    string_attr(&body, "redelegated_trust_id", true)?;
    let roles = roles_attr(&body)?;
    string_attr(&body, "expires_at", true)?;
    caller.enforce(
        "identity:create_trust",
        Target::of("trust", Value::Object(body.clone())),
    )?;
    gate(&caller, &state)?;
    let expires_at = expiry_attr(&body)?;
    let extra: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (subject, _) = caller.subject();
    let creator = Creator {
        user_id: &subject.id,
        trust_id: caller.payload.trust_id.as_deref(),
        other_delegation: caller.payload.access_token_id.is_some(),
    };
    let trust = state
        .trusts
        .create_trust(
            creator,
            TrustRequest {
                trustor_user_id,
                trustee_user_id,
                impersonation,
                project_id,
                roles,
                expires_at,
                remaining_uses,
                allow_redelegation,
                redelegation_count,
                extra,
            },
        )
        .await?;
    let roles = state.trusts.roles_of(&trust).await?;
    Ok(entity(
        StatusCode::CREATED,
        "trust",
        render_full(&links, &trust, &roles),
    ))
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/OS-TRUST/trusts").get(list).post(create))
        .add(
            resource("/v3/OS-TRUST/trusts/{trust_id}")
                .get(get)
                .delete(delete),
        )
        .add(resource("/v3/OS-TRUST/trusts/{trust_id}/roles").get(list_roles))
        .add(resource("/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}").get(get_role));
}
