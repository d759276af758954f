//! GET /v3/OS-REVOKE/events

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::{json_response, resource, Caller, Links, Query, Router, Target};
use super::AppState;
use crate::revoke::RevokeEvent;
use crate::token::payload::isotime;

fn at(ts: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(ts, 0).single().unwrap_or_default()
}

/// Keystone's `RevokeEvent.to_dict`.
pub fn event_json(e: &RevokeEvent) -> Value {
    let r = &e.row;
    let mut m = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), json!(v));
        }
    };
    put("user_id", &r.user_id);
    put("role_id", &r.role_id);
    put("domain_id", &r.domain_id);
    put("domain_scope_id", &e.domain_scope_id);
    put("project_id", &r.project_id);
    put("audit_id", &r.audit_id);
    put("audit_chain_id", &r.audit_chain_id);
    put("OS-TRUST:trust_id", &r.trust_id);
    put("OS-OAUTH1:consumer_id", &r.consumer_id);
    put("OS-OAUTH1:access_token_id", &r.access_token_id);
    if let Some(exp) = r.expires_at {
        m.insert(
            "expires_at".into(),
            json!(at(exp).format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
    }
    m.insert("issued_before".into(), json!(isotime(at(r.issued_before))));
    m.insert("revoked_at".into(), json!(isotime(at(r.revoked_at))));
    Value::Object(m)
}

fn parse_since(raw: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.timestamp());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw.trim_end_matches('Z'), fmt) {
            return Some(t.and_utc().timestamp());
        }
    }
    None
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct EventsQuery {
    since: Option<String>,
}

pub async fn list_events(
    caller: Caller,
    query: Query<EventsQuery>,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_revoke_events", Target::none())?;
    let since = match &query.since {
        None => None,
        Some(raw) => Some(
            parse_since(raw)
                .ok_or_else(|| ApiError::BadRequest(format!("invalidate date format {raw}")))?,
        ),
    };
    let events: Vec<Value> = state
        .revoke
        .list_since(since)
        .await?
        .iter()
        .map(event_json)
        .collect();
    // Keystone's self link here is the bare path, without the query.
    Ok(json_response(
        StatusCode::OK,
        &json!({"events": events, "links": {"next": null, "self": links.at("/v3/OS-REVOKE/events"), "previous": null}}),
    ))
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/OS-REVOKE/events").get(list_events));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_formats() {
        assert_eq!(parse_since("2026-11-23T02:52:20Z"), Some(1_795_402_340));
        assert_eq!(
            parse_since("2026-11-23T02:52:20.000000Z"),
            Some(1_795_402_340)
        );
        assert_eq!(parse_since("yesterday"), None);
    }
}
