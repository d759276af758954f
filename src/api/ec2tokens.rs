//! POST /v3/ec2tokens and /v3/s3tokens (`keystone/api/_shared/EC2_S3_Resource.py`):
//! a signed EC2 or S3 request, checked against the EC2 credential's secret, answered
//! with a project-scoped `ec2credential` token for the credential's user.
//!
//! An unknown access key costs the same work as a wrong signature (a signature is
//! computed with a throw-away secret) and answers the same 401.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::credentials::ec2_id;
use super::error::ApiResult;
use super::kit::input::JsonBody;
use super::kit::{resource, Caller, Router, Target};
use super::render::token_body;
use super::AppState;
use crate::credential::signature::{ec2_signature, equal, s3_signature};
use crate::error::Error;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ec2,
    S3,
}

fn deny(detail: &str) -> Error {
    Error::unauthorized(detail.to_string())
}

/// `_check_signature` of /v3/ec2tokens: retried without the port when the host has one.
fn ec2_ok(secret: &str, credentials: &Map<String, Value>) -> bool {
    let given = credentials
        .get("signature")
        .and_then(Value::as_str)
        .unwrap_or("");
    let first = ec2_signature(secret, credentials);
    if !given.is_empty() && first.as_deref().is_some_and(|s| equal(given, s)) {
        return true;
    }
    let host = credentials
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("");
    if given.is_empty() || !host.contains(':') {
        return false;
    }
    let Ok(url) = url::Url::parse(&format!("http://{host}")) else {
        return false;
    };
    let mut again = credentials.clone();
    again.insert(
        "host".into(),
        Value::String(url.host_str().unwrap_or("").to_lowercase()),
    );
    ec2_signature(secret, &again).is_some_and(|s| equal(given, &s))
}

fn s3_ok(secret: &str, credentials: &Map<String, Value>) -> bool {
    let token = credentials
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or("");
    let given = credentials
        .get("signature")
        .and_then(Value::as_str)
        .unwrap_or("");
    s3_signature(secret, token).is_some_and(|s| equal(given, &s))
}

/// `timeutils.parse_isotime`, naive times being UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y%m%dT%H%M%SZ",
        "%Y%m%dT%H%M%S",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    None
}

/// `_check_timestamp`: a request older than `[credential] auth_ttl` minutes is refused.
fn check_timestamp(
    credentials: &Map<String, Value>,
    now: DateTime<Utc>,
    ttl_min: u64,
) -> ApiResult<()> {
    let get = |outer: &str, key: &str| {
        credentials
            .get(outer)
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let Some(raw) = get("params", "Timestamp")
        .or_else(|| get("headers", "X-Amz-Date"))
        .or_else(|| get("params", "X-Amz-Date"))
    else {
        return Ok(());
    };
    let ts = parse_time(raw).ok_or_else(|| deny("Credential timestamp is invalid"))?;
    if now > ts + chrono::Duration::minutes(ttl_min as i64) {
        return Err(deny("Credential is expired").into());
    }
    Ok(())
}

async fn authenticate(
    kind: Kind,
    caller: Caller,
    json: JsonBody,
    state: &AppState,
) -> ApiResult<HttpResponse> {
    let action = match kind {
        Kind::Ec2 => "identity:ec2tokens_validate",
        Kind::S3 => "identity:s3tokens_validate",
    };
    caller.enforce(action, Target::none())?;
    if !state
        .auth
        .configured_methods()
        .iter()
        .any(|m| m == "ec2credential")
    {
        return Err(Error::Unavailable {
            detail: "Cannot mint a token from an EC2 or S3 credential: the ec2credential auth method is not enabled. Add ec2credential to the [auth] methods configuration option.".into(),
        }
        .into());
    }
    let body = json.0;
    if body.is_empty() {
        return Err(Error::validation("request must include a request body").into());
    }
    let truthy = |v: &&Value| {
        !matches!(v, Value::Null | Value::Bool(false)) && !v.as_object().is_some_and(Map::is_empty)
    };
    let credentials = ["credentials", "credential", "ec2Credentials"]
        .iter()
        .find_map(|k| body.get(*k).filter(truthy))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(access) = credentials.get("access") else {
        return Err(deny("EC2 Signature not supplied").into());
    };
    let access = match access {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let found = state
        .credentials
        .find(&ec2_id(&access))
        .await?
        .filter(|c| c.cred_type == "ec2");
    let blob: Map<String, Value> = found
        .as_ref()
        .and_then(|c| match serde_json::from_str(&c.blob) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    // Unknown keys are checked against a secret nobody has: same work, same 401.
    let secret = match blob.get("secret") {
        Some(Value::String(s)) if found.is_some() => s.clone(),
        _ => crate::model::new_id(),
    };
    let signed = match kind {
        Kind::Ec2 => ec2_ok(&secret, &credentials),
        Kind::S3 => s3_ok(&secret, &credentials),
    };
    let Some(cred) = found else {
        return Err(deny("EC2 access key not found.").into());
    };
    if !signed {
        return Err(deny(match kind {
            Kind::Ec2 => "Invalid EC2 signature.",
            Kind::S3 => "Credential signature mismatch",
        })
        .into());
    }
    for delegated in ["trust_id", "app_cred_id", "access_token_id"] {
        if blob.get(delegated).is_some_and(|v| !v.is_null()) {
            return Err(deny("delegated EC2 credentials are not supported").into());
        }
    }
    let project_id = cred.project_id.clone().unwrap_or_else(|| "None".into());
    let project = state.resource.get_project(&project_id).await?;
    let user = state.identity.get_user(&cred.user_id).await?;
    if !user.enabled || !project.enabled {
        return Err(deny("user or project disabled").into());
    }
    check_timestamp(
        &credentials,
        state.tokens.clock().now(),
        state.settings.credential.auth_ttl,
    )?;
    let token = state
        .auth
        .issue_for_project(user, project, "ec2credential")
        .await?;
    let catalog = state
        .catalog
        .cached_catalog(token.scope.project_id(), &token.user.id)
        .await?;
    let body = token_body(&token, Some(&catalog)).map_err(Error::internal)?;
    let mut response = HttpResponse::build(StatusCode::OK);
    response.content_type("application/json");
    if kind == Kind::Ec2 {
        response.insert_header(("X-Subject-Token", token.id.clone()));
    }
    Ok(response.body(body))
}

pub async fn ec2tokens(
    caller: Caller,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authenticate(Kind::Ec2, caller, json, &state).await
}

pub async fn s3tokens(
    caller: Caller,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    authenticate(Kind::S3, caller, json, &state).await
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/ec2tokens").post(ec2tokens))
        .add(resource("/v3/s3tokens").post(s3tokens));
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn timestamps_as_parse_isotime() {
        for s in [
            "2026-12-06T20:00:00Z",
            "2026-12-06T20:00:00",
            "20261206T200000Z",
            "2026-12-06T20:00:00.123Z",
            "2026-12-06T21:00:00+01:00",
        ] {
            assert_eq!(
                parse_time(s).map(|t| t.timestamp() / 60),
                parse_time("2026-12-06T20:00:00Z").map(|t| t.timestamp() / 60),
                "{s}"
            );
        }
        assert!(parse_time("yesterday").is_none());
    }
}
