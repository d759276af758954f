//! Who is calling, and the one way to authorize: `Caller` (an extractor that
//! validates `X-Auth-Token`, 401 without a valid one) and `Caller::enforce(action, target)`.
//!
//! Keystone's order is 401, then 404 where the handler looks the target up, then 403:
//! a handler takes `Caller` first, so an anonymous client learns nothing about ids.

use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};

use crate::api::error::{ApiError, ApiResult};
use crate::api::AppState;
use crate::error::Error;
use crate::policy::{Credentials, Enforcer};
use crate::token::provider::{Scope, Token};

/// A request header, trimmed; None when absent or blank.
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The state every handler is registered with.
pub fn app_state(req: &HttpRequest) -> ApiResult<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("application state missing")).into())
}

/// The `X-Auth-Token` when it validates (window 0). An invalid, expired or revoked
/// token is no caller at all, as in Keystone; an outage is a 503, never a 401. A token
/// minted from an EC2/S3 signature authorizes nothing (Keystone 30's auth context,
/// LP#2153453): 403; it can still be validated as a subject token.
pub async fn optional_caller(req: &HttpRequest, state: &AppState) -> ApiResult<Option<Arc<Token>>> {
    let Some(raw) = header(req, "X-Auth-Token") else {
        return Ok(None);
    };
    match state.tokens.validate(raw, 0).await {
        Ok(t) if t.payload.methods.iter().any(|m| m == "ec2credential") => {
            Err(ApiError::Service(Error::Forbidden {
                detail: "EC2 credential tokens cannot be used for authorization.".into(),
            }))
        }
        // Keystone runs keystonemiddleware's access-rule check on its own API
        // (service type `identity`); a token outside its rules is no caller.
        Ok(t) if !within_access_rules(req, &t) => Ok(None),
        Ok(t) => Ok(Some(t)),
        Err(e @ (Error::Unavailable { .. } | Error::Internal(_))) => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// keystonemiddleware's `validate_allowed_request` for `service_type = identity`:
/// validating a token is always allowed, anything else needs a matching rule.
fn within_access_rules(req: &HttpRequest, t: &Token) -> bool {
    let Some(rules) = t
        .application_credential
        .as_ref()
        .and_then(|c| c.access_rules.as_deref())
    else {
        return true;
    };
    let method = req.method().as_str();
    let path = req.path();
    (method == "GET" && path.ends_with("/v3/auth/tokens"))
        || crate::application_credential::rules::allows(rules, "identity", method, path)
}

/// The validated caller.
pub struct Caller {
    token: Arc<Token>,
    policy: Arc<Enforcer>,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let token = optional_caller(&req, &state)
                .await?
                .ok_or_else(|| ApiError::Service(Error::unauthorized("no valid X-Auth-Token")))?;
            Ok(Caller {
                token,
                policy: state.policy.clone(),
            })
        })
    }
}

impl std::ops::Deref for Caller {
    type Target = Token;

    fn deref(&self) -> &Token {
        &self.token
    }
}

impl Caller {
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// Policy `action` on `target`, or 403 with Keystone's message.
    pub fn enforce(&self, action: &str, target: Target) -> ApiResult<()> {
        self.policy
            .enforce(action, &credentials(&self.token), &target.into_dict())
            .map_err(|_| {
                ApiError::Service(Error::PolicyForbidden {
                    action: action.to_string(),
                })
            })
    }

    /// A delegated token (Keystone's `trust_id or is_delegated_method(token)`): trust
    /// scoped, from an application credential or OAuth1, or obtained with a method
    /// that is not primary. Such a token may not manage credentials or trusts.
    pub fn is_delegated(&self) -> bool {
        let p = &self.token.payload;
        p.trust_id.is_some()
            || p.app_cred_id.is_some()
            || p.access_token_id.is_some()
            || crate::auth::is_delegated(&p.methods)
    }

    /// Keystone's `_block_delegated_token*` guards: a delegated token is refused with
    /// `detail` (403).
    pub fn refuse_delegated(&self, detail: &str) -> ApiResult<()> {
        if self.is_delegated() {
            return Err(Error::Forbidden {
                detail: detail.into(),
            }
            .into());
        }
        Ok(())
    }

    /// The domain of a domain-scoped token: Keystone limits what such a caller
    /// lists to that domain, whatever the filters say.
    pub fn scoped_domain(&self) -> Option<&str> {
        match &self.token.scope {
            Scope::Domain(d) => Some(&d.id),
            _ => None,
        }
    }
}

/// What a rule's `%(target.x)s` reads, plus the URL's path values at the top level
/// (Keystone's `enforce_call` adds its view args: `%(user_id)s` reads those).
#[derive(Clone, Debug, Default)]
pub struct Target {
    target: Map<String, Value>,
    args: Map<String, Value>,
}

impl Target {
    /// No target attributes (a list or create rule that reads none).
    pub fn none() -> Self {
        Target::default()
    }

    /// `{key: value}`, e.g. `Target::of("user", user_dict)`.
    pub fn of(key: &str, value: Value) -> Self {
        Target::none().with(key, value)
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.target.insert(key.to_string(), value);
        self
    }

    /// Adds `key` only when the entity exists: Keystone leaves a missing one out,
    /// so a caller who may not see it gets 403 rather than learning it is missing.
    pub fn with_found(self, key: &str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// A path value beside `target`.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.args
            .insert(name.to_string(), Value::String(value.to_string()));
        self
    }

    fn into_dict(self) -> Value {
        let mut dict = self.args;
        dict.insert("target".into(), Value::Object(self.target));
        Value::Object(dict)
    }
}

/// The policy engine's view of a token.
pub fn credentials(t: &Token) -> Credentials {
    let (project_id, project_domain_id, domain_id, system_scope) = match &t.scope {
        Scope::Project { project, .. } => (
            Some(project.id.clone()),
            Some(project.domain_id.clone()),
            None,
            None,
        ),
        Scope::Domain(d) => (None, None, Some(d.id.clone()), None),
        Scope::System => (None, None, None, Some("all".to_string())),
        Scope::Unscoped => (None, None, None, None),
    };
    // A trust-scoped token acts as its trustor when impersonating (Keystone's context
    // reads the rendered token's user).
    let (user, _) = t.subject();
    Credentials {
        user_id: Some(user.id.clone()),
        user_domain_id: Some(user.domain_id.clone()),
        project_id,
        project_domain_id,
        domain_id,
        system_scope,
        roles: t.roles.iter().map(|r| r.name.clone()).collect(),
        is_admin: false,
    }
}

/// Who may see operator detail (which health check failed, `/metrics`): a client on
/// this host that no proxy relayed, or a token that passes `admin_required`.
pub async fn operator_view(req: &HttpRequest, state: &AppState) -> bool {
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    if !proxied && req.peer_addr().is_some_and(|p| p.ip().is_loopback()) {
        return true;
    }
    match optional_caller(req, state).await {
        Ok(Some(token)) => state
            .policy
            .enforce(
                "admin_required",
                &credentials(&token),
                &Value::Object(Map::new()),
            )
            .is_ok(),
        _ => false,
    }
}
