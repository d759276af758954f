//! Token bodies in Keystone's shape and key order (`render_token_response_from_model`).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use crate::catalog::CatalogService;
use crate::token::payload::isotime;
use crate::token::provider::{Scope, Token};

/// `password_expires_at`: a naive UTC datetime with microseconds and no `Z`.
pub fn password_expiry(ts: Option<i64>) -> Value {
    ts.and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map(|t: DateTime<Utc>| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()))
        .unwrap_or(Value::Null)
}

pub fn token_body(t: &Token, catalog: Option<std::sync::Arc<Vec<CatalogService>>>) -> Value {
    let mut token = Map::new();
    token.insert("methods".into(), json!(t.payload.methods));
    token.insert(
        "user".into(),
        json!({
            "domain": {"id": t.user_domain.id, "name": t.user_domain.name},
            "id": t.user.id,
            "name": t.user.name,
            "password_expires_at": password_expiry(t.user.password_expires_at),
        }),
    );
    token.insert("audit_ids".into(), json!(t.payload.audit_ids));
    token.insert("expires_at".into(), json!(isotime(t.payload.expires_at)));
    token.insert("issued_at".into(), json!(isotime(t.issued_at)));
    let roles = || {
        json!(t
            .roles
            .iter()
            .map(|r| json!({"id": r.id, "name": r.name}))
            .collect::<Vec<_>>())
    };
    match &t.scope {
        Scope::Unscoped => {}
        Scope::System => {
            token.insert("roles".into(), roles());
            token.insert("system".into(), json!({"all": true}));
        }
        Scope::Domain(d) => {
            token.insert("domain".into(), json!({"id": d.id, "name": d.name}));
            token.insert("roles".into(), roles());
        }
        Scope::Project { project, domain } => {
            token.insert(
                "project".into(),
                json!({
                    "domain": {"id": domain.id, "name": domain.name},
                    "id": project.id,
                    "name": project.name,
                }),
            );
            token.insert("is_domain".into(), json!(false));
            token.insert("roles".into(), roles());
        }
    }
    if let Some(catalog) = catalog {
        token.insert("catalog".into(), json!(catalog.as_slice()));
    }
    json!({ "token": Value::Object(token) })
}

/// Serialised validation bodies: (token, with catalog) -> the bytes, tagged with the
/// state generation they were rendered at. The body of a token only changes when
/// its roles, names or catalog do, and every such write moves the generation.
/// Validation itself (expiry, revocation, policy) still runs on every request.
#[derive(Clone)]
pub struct BodyCache {
    cache: moka::sync::Cache<(String, bool), (u64, actix_web::web::Bytes)>,
}

impl Default for BodyCache {
    fn default() -> Self {
        BodyCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(20_000)
                .time_to_live(std::time::Duration::from_secs(600))
                .build(),
        }
    }
}

impl BodyCache {
    pub fn get(
        &self,
        token: &str,
        with_catalog: bool,
        generation: u64,
    ) -> Option<actix_web::web::Bytes> {
        match self.cache.get(&(token.to_string(), with_catalog)) {
            Some((g, body)) if g == generation => Some(body),
            _ => None,
        }
    }

    pub fn put(
        &self,
        token: &str,
        with_catalog: bool,
        generation: u64,
        body: actix_web::web::Bytes,
    ) {
        self.cache
            .insert((token.to_string(), with_catalog), (generation, body));
    }
}
