//! Who is calling: the `X-Auth-Token` validated with no expiry window.
//! An invalid, expired or revoked caller token makes the request anonymous (as in
//! Keystone); handlers that need a caller then answer 401.

use actix_web::HttpRequest;

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::error::Error;
use std::sync::Arc;

use crate::policy::Credentials;
use crate::token::provider::{Scope, Token};

pub struct Caller {
    pub token: Option<Arc<Token>>,
}

pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

impl Caller {
    pub async fn from_request(req: &HttpRequest, state: &AppState) -> ApiResult<Caller> {
        let Some(raw) = header(req, "X-Auth-Token") else {
            return Ok(Caller { token: None });
        };
        match state.tokens.validate(raw, 0).await {
            Ok(t) => Ok(Caller { token: Some(t) }),
            // An outage is not the caller's fault: fail closed with 503, not 401.
            Err(e @ (Error::Unavailable { .. } | Error::Internal(_))) => Err(e.into()),
            Err(_) => Ok(Caller { token: None }),
        }
    }

    pub fn require(&self) -> ApiResult<&Arc<Token>> {
        self.token
            .as_ref()
            .ok_or_else(|| ApiError::Service(Error::unauthorized("no valid X-Auth-Token")))
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
    Credentials {
        user_id: Some(t.user.id.clone()),
        user_domain_id: Some(t.user.domain_id.clone()),
        project_id,
        project_domain_id,
        domain_id,
        system_scope,
        roles: t.roles.iter().map(|r| r.name.clone()).collect(),
        is_admin: false,
    }
}
