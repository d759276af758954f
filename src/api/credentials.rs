//! /v3/credentials (`keystone/api/credentials.py`). Bodies are validated before
//! policy, as Keystone's schema decorators do; a user sees only the credentials the
//! `identity:get_credential` rule lets them see.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::kit::input::{closed, extra_attrs, invalid, string_attr, JsonBody, TopLevel};
use super::kit::{
    collection, entity, no_content, resource, Caller, Links, QueryPairs, Router, Target,
};
use super::AppState;
use crate::auth::missing;
use crate::credential::Credential;
use crate::error::Error;
use crate::model::{new_id, CredentialFilter};
use crate::token::provider::Scope;

const KNOWN: &[&str] = &["id", "user_id", "project_id", "type", "blob", "links"];

/// The credential as Keystone's `to_dict()`: extra attributes, then the columns.
pub fn credential_dict(c: &Credential) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &c.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(c.id));
    m.insert("user_id".into(), json!(c.user_id));
    m.insert("project_id".into(), json!(c.project_id));
    m.insert("type".into(), json!(c.cred_type));
    m.insert("blob".into(), json!(c.blob));
    m
}

fn render(links: &Links, c: &Credential) -> Value {
    let mut m = credential_dict(c);
    m.insert("links".into(), links.entity("credentials", &c.id));
    Value::Object(m)
}

/// The policy target of an existing credential (`_build_target_enforcement`).
fn target_of(c: Option<&Credential>) -> Target {
    Target::none().with_found("credential", c.map(|c| Value::Object(credential_dict(c))))
}

fn bad_blob() -> ApiError {
    ApiError::Service(Error::validation(missing("blob", "credential")))
}

/// `_validate_blob_json`: an ec2 blob is a JSON object with an `access`.
pub fn ec2_blob(blob: &str) -> ApiResult<Map<String, Value>> {
    let parsed: Value = serde_json::from_str(blob)
        .map_err(|_| ApiError::Service(Error::validation("Invalid blob in credential")))?;
    let Value::Object(m) = parsed else {
        return Err(bad_blob());
    };
    if m.is_empty() {
        return Err(bad_blob());
    }
    if m.get("access").is_none_or(Value::is_null) {
        return Err(ApiError::Service(Error::validation(missing(
            "access",
            "credential",
        ))));
    }
    Ok(m)
}

/// The id of an ec2 credential: sha256 of its access key, hex.
pub fn ec2_id(access: &str) -> String {
    hex::encode(Sha256::digest(access.as_bytes()))
}

fn access_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Keystone 30's `_require_primary_auth` (LP#2159643): a delegated token (trust,
/// application credential, OAuth1, EC2) never touches a credential, so it cannot mint
/// credentials that outlive or exceed its delegation. Keystone's admin escape hatch
/// for ec2 credentials does not exist here.
fn require_primary_auth(caller: &Caller) -> ApiResult<()> {
    if caller.is_delegated() {
        return Err(ApiError::Service(Error::ForbiddenAction(
            "You are not authorized to perform the requested action: Delegated tokens cannot access credentials directly.".into(),
        )));
    }
    Ok(())
}

pub async fn list(
    caller: Caller,
    links: Links,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let target = match caller.scope {
        Scope::System => Target::none(),
        // Keystone's oslo_context.user_id: the trustor of an impersonating trust token.
        _ => Target::of("credential", json!({"user_id": caller.subject().0.id})),
    };
    caller.enforce("identity:list_credentials", target)?;
    let filter = CredentialFilter {
        user_id: query.first("user_id").map(str::to_string),
        cred_type: query.first("type").map(str::to_string),
        project_id: None,
    };
    let mut shown = Vec::new();
    for c in state.credentials.list(&filter).await? {
        if caller
            .enforce("identity:get_credential", target_of(Some(&c)))
            .is_ok()
            && require_primary_auth(&caller).is_ok()
        {
            shown.push(render(&links, &c));
        }
    }
    Ok(collection(&links, "credentials", shown, None))
}

pub async fn create(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("credential", TopLevel::Open)?;
    string_attr(&body, "id", false)?;
    let blob = string_attr(&body, "blob", false)?.flatten();
    let cred_type = string_attr(&body, "type", false)?.flatten();
    let user_id = string_attr(&body, "user_id", false)?.flatten();
    let project_id = string_attr(&body, "project_id", true)?;
    for (field, present) in [
        ("blob", blob.is_some()),
        ("type", cred_type.is_some()),
        ("user_id", user_id.is_some()),
    ] {
        if !present {
            return Err(invalid(
                "credential",
                &format!("'{field}' is a required property"),
            ));
        }
    }
    let (blob, cred_type, user_id) = (
        blob.unwrap_or_default(),
        cred_type.unwrap_or_default(),
        user_id.unwrap_or_default(),
    );
    if cred_type == "ec2" && project_id.is_none() {
        return Err(invalid("credential", "'project_id' is a required property"));
    }
    caller.enforce(
        "identity:create_credential",
        Target::of("credential", Value::Object(body.clone())),
    )?;
    require_primary_auth(&caller)?;
    let id = if cred_type.to_lowercase() == "ec2" {
        let parsed = ec2_blob(&blob)?;
        ec2_id(&access_text(parsed.get("access").unwrap_or(&Value::Null)))
    } else {
        new_id()
    };
    let created = state
        .credentials
        .create(Credential {
            id,
            user_id,
            project_id: project_id.flatten(),
            cred_type,
            blob,
            extra: extra_attrs(&body, KNOWN),
        })
        .await?;
    Ok(entity(
        StatusCode::CREATED,
        "credential",
        render(&links, &created),
    ))
}

pub async fn get(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let found = state.credentials.find(&path).await?;
    caller.enforce("identity:get_credential", target_of(found.as_ref()))?;
    require_primary_auth(&caller)?;
    let c = found.ok_or_else(|| Error::not_found(format!("Could not find credential: {path}.")))?;
    Ok(entity(StatusCode::OK, "credential", render(&links, &c)))
}

/// The scope an ec2 blob carries may not change (`_validate_blob_update_keys`).
fn check_ec2_update(current: &Credential, new_blob: &str) -> ApiResult<()> {
    if current.cred_type.to_lowercase() != "ec2" {
        return Ok(());
    }
    let new = ec2_blob(new_blob)?;
    let old: Map<String, Value> = match serde_json::from_str(&current.blob) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for key in ["trust_id", "app_cred_id", "access_token_id", "access_id"] {
        if old.get(key) != new.get(key) {
            return Err(ApiError::Service(Error::validation(format!(
                "{key} can not be updated for credential"
            ))));
        }
    }
    Ok(())
}

pub async fn update(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.entity("credential", TopLevel::Open)?;
    closed(&body, &["blob"], "credential")?;
    let Some(blob) = string_attr(&body, "blob", false)?.flatten() else {
        return Err(invalid("credential", "'blob' is a required property"));
    };
    let found = state.credentials.find(&path).await?;
    caller.enforce("identity:update_credential", target_of(found.as_ref()))?;
    require_primary_auth(&caller)?;
    let current =
        found.ok_or_else(|| Error::not_found(format!("Could not find credential: {path}.")))?;
    check_ec2_update(&current, &blob)?;
    let mut merged = current.clone();
    merged.blob = blob.clone();
    caller.enforce("identity:update_credential", target_of(Some(&merged)))?;
    let updated = state.credentials.update_blob(&path, blob).await?;
    Ok(entity(
        StatusCode::OK,
        "credential",
        render(&links, &updated),
    ))
}

pub async fn delete(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let found = state.credentials.find(&path).await?;
    caller.enforce("identity:delete_credential", target_of(found.as_ref()))?;
    require_primary_auth(&caller)?;
    if found.is_none() {
        return Err(Error::not_found(format!("Could not find credential: {path}.")).into());
    }
    state.credentials.delete(&path).await?;
    Ok(no_content())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/credentials").get(list).post(create))
        .add(
            resource("/v3/credentials/{credential_id}")
                .get(get)
                .patch(update)
                .delete(delete),
        );
}

/// `_convert_v3_to_ec2_credential`.
fn ec2_view(links: &Links, c: &Credential) -> Value {
    let blob: Map<String, Value> = match serde_json::from_str(&c.blob) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let access = blob.get("access").cloned().unwrap_or(Value::Null);
    let access_text = access.as_str().unwrap_or_default().to_string();
    json!({
        "user_id": c.user_id,
        "tenant_id": c.project_id,
        "access": access,
        "secret": blob.get("secret").cloned().unwrap_or(Value::Null),
        "trust_id": blob.get("trust_id").cloned().unwrap_or(Value::Null),
        "links": {"self": links.at(&format!(
            "/v3/users/{}/credentials/OS-EC2/{access_text}",
            c.user_id
        ))},
    })
}

fn ec2_not_found() -> ApiError {
    ApiError::Service(Error::unauthorized("EC2 access key not found."))
}

pub async fn ec2_list(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    caller.enforce(
        "identity:ec2_list_credentials",
        Target::none().arg("user_id", &user_id),
    )?;
    require_primary_auth(&caller)?;
    state.identity.get_user(&user_id).await?;
    let filter = CredentialFilter {
        user_id: Some(user_id),
        cred_type: Some("ec2".into()),
        project_id: None,
    };
    let shown = state
        .credentials
        .list(&filter)
        .await?
        .iter()
        .map(|c| ec2_view(&links, c))
        .collect();
    Ok(collection(&links, "credentials", shown, None))
}

pub async fn ec2_create(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    caller.enforce(
        "identity:ec2_create_credential",
        Target::of("credential", json!({ "user_id": user_id })).arg("user_id", &user_id),
    )?;
    require_primary_auth(&caller)?;
    state.identity.get_user(&user_id).await?;
    let tenant_id = match json.0.get("tenant_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "None".to_string(),
        Some(other) => other.to_string(),
    };
    state.resource.get_project(&tenant_id).await?;
    let access = new_id();
    let mut blob = String::from("{\"access\": ");
    crate::credential::crypto::py_json_string(&access, &mut blob);
    blob.push_str(", \"secret\": ");
    crate::credential::crypto::py_json_string(&new_id(), &mut blob);
    blob.push_str(", \"trust_id\": null}");
    let created = state
        .credentials
        .create(Credential {
            id: ec2_id(&access),
            user_id,
            project_id: Some(tenant_id),
            cred_type: "ec2".into(),
            blob,
            extra: Map::new(),
        })
        .await?;
    Ok(entity(
        StatusCode::CREATED,
        "credential",
        ec2_view(&links, &created),
    ))
}

/// The ec2 credential behind `access` (`_get_raw_cred`): 404 when no credential has
/// that id, 401 when it is not an ec2 one.
async fn ec2_lookup(
    caller: &Caller,
    action: &str,
    user_id: &str,
    access: &str,
    state: &AppState,
) -> ApiResult<Credential> {
    let id = ec2_id(access);
    let found = state
        .credentials
        .find(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("Could not find credential: {id}.")))?;
    caller.enforce(action, target_of(Some(&found)).arg("user_id", user_id))?;
    require_primary_auth(caller)?;
    state.identity.get_user(user_id).await?;
    if found.cred_type != "ec2" {
        return Err(ec2_not_found());
    }
    Ok(found)
}

pub async fn ec2_get(
    caller: Caller,
    links: Links,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, access) = path.into_inner();
    let c = ec2_lookup(
        &caller,
        "identity:ec2_get_credential",
        &user_id,
        &access,
        &state,
    )
    .await?;
    Ok(entity(StatusCode::OK, "credential", ec2_view(&links, &c)))
}

pub async fn ec2_delete(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, access) = path.into_inner();
    let c = ec2_lookup(
        &caller,
        "identity:ec2_delete_credential",
        &user_id,
        &access,
        &state,
    )
    .await?;
    state.credentials.delete(&c.id).await?;
    Ok(no_content())
}

pub fn ec2_routes(r: &mut Router) {
    r.add(
        resource("/v3/users/{user_id}/credentials/OS-EC2")
            .get(ec2_list)
            .post(ec2_create),
    )
    .add(
        resource("/v3/users/{user_id}/credentials/OS-EC2/{credential_id}")
            .get(ec2_get)
            .delete(ec2_delete),
    );
}
