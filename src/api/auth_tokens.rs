//! `/v3/auth/tokens` (issue, validate, check, revoke) and the `/v3/auth/*` listings.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::caller::header;
use super::kit::input::{invalid as invalid_field, JsonBody};
use super::kit::{json_response, no_content, resource, Caller, Links, QueryPairs, Router, Target};
use super::render::token_body;
use super::AppState;
use crate::assignment::RoleTarget;
use crate::auth::{missing, AppCredPayload, AuthRequest, NamedRef, PasswordMethod, ScopeRequest};
use crate::error::Error;
use crate::identity::UserRef;
use crate::model::ProjectFilter;
use crate::token::provider::{Scope, Token};

fn as_object<'a>(v: &'a Value, field: &str) -> ApiResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| invalid_field(field, &format!("{v} is not of type 'object'")))
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid_field(
            key,
            &format!("{other} is not of type 'string'"),
        )),
    }
}

fn named_ref(obj: &Map<String, Value>, target: &str) -> ApiResult<NamedRef> {
    // Keystone: when both are given, the name wins.
    if let Some(name) = opt_string(obj, "name")? {
        return Ok(NamedRef::Name(name));
    }
    if let Some(id) = opt_string(obj, "id")? {
        return Ok(NamedRef::Id(id));
    }
    Err(Error::validation(missing("id or name", target)).into())
}

/// Parses Keystone's auth request schema into the service's request.
pub fn parse_auth_request(body: &Map<String, Value>) -> ApiResult<AuthRequest> {
    let auth = body
        .get("auth")
        .filter(|a| !a.is_null())
        .ok_or_else(|| ApiError::from(Error::validation(missing("auth", "request body"))))?;
    let auth = as_object(auth, "auth")?;
    let identity = auth
        .get("identity")
        .ok_or_else(|| invalid_field("auth", "'identity' is a required property"))?;
    let identity = as_object(identity, "identity")?;
    let methods = identity
        .get("methods")
        .ok_or_else(|| invalid_field("identity", "'methods' is a required property"))?
        .as_array()
        .ok_or_else(|| invalid_field("methods", "is not of type 'array'"))?
        .iter()
        .map(|m| {
            m.as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid_field("methods", &format!("{m} is not of type 'string'")))
        })
        .collect::<ApiResult<Vec<String>>>()?;
    for m in &methods {
        if !identity.contains_key(m) {
            return Err(Error::validation(missing(m, "identity")).into());
        }
    }
    let password = match identity
        .get("password")
        .filter(|_| methods.iter().any(|m| m == "password"))
    {
        None => None,
        Some(pw) => {
            let pw = as_object(pw, "password")?;
            let user = pw
                .get("user")
                .ok_or_else(|| ApiError::from(Error::validation(missing("user", "password"))))?;
            let user = as_object(user, "user")?;
            let secret = opt_string(user, "password")?.unwrap_or_default();
            let user_ref = user_ref(user)?;
            Some(PasswordMethod {
                user: user_ref,
                password: secret,
            })
        }
    };
    let token = match identity
        .get("token")
        .filter(|_| methods.iter().any(|m| m == "token"))
    {
        None => None,
        Some(t) => {
            let t = as_object(t, "token")?;
            Some(
                opt_string(t, "id")?
                    .ok_or_else(|| invalid_field("token", "'id' is a required property"))?,
            )
        }
    };
    let application_credential = match identity
        .get("application_credential")
        .filter(|_| methods.iter().any(|m| m == "application_credential"))
    {
        None => None,
        Some(a) => {
            let a = as_object(a, "application_credential")?;
            let user = match a.get("user") {
                None | Some(Value::Null) => None,
                Some(u) => Some(user_ref(as_object(u, "user")?)?),
            };
            Some(AppCredPayload {
                id: opt_string(a, "id")?,
                name: opt_string(a, "name")?,
                user,
                secret: opt_string(a, "secret")?.unwrap_or_default(),
            })
        }
    };
    let scope = parse_scope(auth.get("scope"))?;
    Ok(AuthRequest {
        methods,
        password,
        token,
        scope,
        application_credential,
        oauth1: None,
    })
}

/// A user named by id, or by name and domain (id or name).
fn user_ref(user: &Map<String, Value>) -> ApiResult<UserRef> {
    if let Some(id) = opt_string(user, "id")? {
        return Ok(UserRef::Id(id));
    }
    let name = opt_string(user, "name")?
        .ok_or_else(|| ApiError::from(Error::validation(missing("id or name", "user"))))?;
    let domain = user
        .get("domain")
        .ok_or_else(|| ApiError::from(Error::validation(missing("domain", "user"))))?;
    let domain = as_object(domain, "domain")?;
    let (domain_id, domain_name) = match named_ref(domain, "domain")? {
        NamedRef::Id(id) => (Some(id), None),
        NamedRef::Name(n) => (None, Some(n)),
    };
    Ok(UserRef::Name {
        name,
        domain_id,
        domain_name,
    })
}

fn parse_scope(scope: Option<&Value>) -> ApiResult<ScopeRequest> {
    let wrong = || {
        ApiError::from(Error::validation(missing(
            "system, project, domain, OS-TRUST:trust or unscoped",
            "scope",
        )))
    };
    let scope = match scope {
        None | Some(Value::Null) => return Ok(ScopeRequest::Default),
        Some(Value::String(s)) if s.contains("unscoped") => return Ok(ScopeRequest::Unscoped),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(wrong()),
    };
    if scope.len() != 1 {
        return Err(wrong());
    }
    let (key, value) = scope.iter().next().ok_or_else(wrong)?;
    match key.as_str() {
        "unscoped" => Ok(ScopeRequest::Unscoped),
        // Keystone only checks that the key is present.
        "system" => Ok(ScopeRequest::System),
        "domain" => Ok(ScopeRequest::Domain(named_ref(
            as_object(value, "domain")?,
            "domain",
        )?)),
        "project" => {
            let p = as_object(value, "project")?;
            if let Some(id) = opt_string(p, "id")? {
                if opt_string(p, "name")?.is_none() {
                    return Ok(ScopeRequest::ProjectId(id));
                }
            }
            let name = opt_string(p, "name")?.ok_or_else(|| {
                ApiError::from(Error::validation(missing("id or name", "project")))
            })?;
            let domain = p
                .get("domain")
                .ok_or_else(|| ApiError::from(Error::validation(missing("domain", "project"))))?;
            let domain = named_ref(as_object(domain, "domain")?, "domain")?;
            Ok(ScopeRequest::ProjectName { name, domain })
        }
        "OS-TRUST:trust" => {
            let t = as_object(value, "OS-TRUST:trust")?;
            Ok(ScopeRequest::Trust(opt_string(t, "id")?.ok_or_else(
                || invalid_field("OS-TRUST:trust", "'id' is a required property"),
            )?))
        }
        _ => Err(wrong()),
    }
}

async fn catalog_for(state: &AppState, t: &Token) -> ApiResult<Arc<crate::catalog::TokenCatalog>> {
    Ok(state
        .catalog
        // Keystone builds a trust token's catalog for the trustor.
        .cached_catalog(
            t.scope.project_id(),
            t.trust.as_ref().map_or(&t.user.id, |g| &g.trustor.id),
        )
        .await?)
}

fn with_subject(status: StatusCode, subject: &str, body: web::Bytes) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header(("X-Subject-Token", subject.to_string()))
        .body(body)
}

/// POST /v3/auth/tokens
pub async fn issue(
    req: HttpRequest,
    json: JsonBody,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let body = json.0;
    let mut auth = parse_auth_request(&body)?;
    if auth.methods.iter().any(|m| m == "oauth1") {
        // Keystone verifies against its base URL and the path asked for.
        let links = Links::of(
            &req,
            state.settings.default.public_endpoint.as_deref(),
            &state.settings.server.trusted_proxies,
        );
        auth.oauth1 = Some(super::oauth1::signed_request(&req, links.at(req.path())));
    }
    let source = super::kit::client::client_ip(&req, &state.settings.server.trusted_proxies);
    // Before any password is hashed: a refused attempt costs no argon2 verification.
    if let Some(pw) = &auth.password {
        if auth.methods.iter().any(|m| m == "password") {
            if let Err(r) = state.login_limiter.check(source, &pw.user) {
                crate::telemetry::audit::rate_limited(r.limit, source, r.retry_after_secs);
                return Err(ApiError::TooManyRequests {
                    retry_after_secs: r.retry_after_secs,
                });
            }
        }
    }
    let token =
        crate::telemetry::audit::with_source(source, Box::pin(state.auth.authenticate(auth)))
            .await?;
    let catalog = if query.has("nocatalog") || matches!(token.scope, Scope::Unscoped) {
        None
    } else {
        Some(catalog_for(&state, &token).await?)
    };
    Ok(with_subject(
        StatusCode::CREATED,
        &token.id,
        token_body(&token, catalog.as_deref()).map_err(Error::internal)?,
    ))
}

/// The shared first half of GET, HEAD and DELETE: the subject (as the policy target,
/// honouring allow_expired), then policy. Keystone's order: 401, 404, 403.
async fn authorize_subject(
    caller: &Caller,
    req: &HttpRequest,
    query: &QueryPairs,
    state: &AppState,
    action: &str,
) -> ApiResult<(Option<Arc<Token>>, i64)> {
    let window = if query.truthy("allow_expired") == Some(true) {
        state.tokens.allow_expired_window()
    } else {
        0
    };
    let subject = match header(req, "X-Subject-Token") {
        Some(s) => Some(state.tokens.validate(s, window).await?),
        None => None,
    };
    // Keys we do not know are left out rather than null (null matches Python's None).
    let target = match &subject {
        Some(s) => Target::of("token", json!({"user_id": s.user.id})),
        None => Target::of("token", json!({})),
    };
    caller.enforce(action, target)?;
    Ok((subject, window))
}

/// Keystone refuses to validate a token whose application credential has access
/// rules for a client that did not announce it enforces them
/// (`OpenStack-Identity-Access-Rules` >= 1.0, sent by keystonemiddleware).
fn check_access_rules_support(req: &HttpRequest, subject: &Token) -> ApiResult<()> {
    let restricted = subject
        .application_credential
        .as_ref()
        .is_some_and(|c| c.access_rules.is_some());
    if !restricted {
        return Ok(());
    }
    let supported = header(req, "OpenStack-Identity-Access-Rules")
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|v| v >= 1.0);
    if supported {
        Ok(())
    } else {
        tracing::warn!(
            "refused to validate an application credential token with access rules for a client that does not announce access rule support (upgrade keystonemiddleware)"
        );
        Err(Error::token_invalid().into())
    }
}

fn no_subject() -> ApiError {
    Error::not_found("No token in the request").into()
}

async fn validate_or_check(
    caller: Caller,
    req: HttpRequest,
    query: QueryPairs,
    state: web::Data<AppState>,
    action: &str,
) -> ApiResult<HttpResponse> {
    let (subject, window) = authorize_subject(&caller, &req, &query, &state, action).await?;
    let subject = subject.ok_or_else(no_subject)?;
    check_access_rules_support(&req, &subject)?;
    if window > 0 && state.tokens.is_expired(&subject) {
        let past = (state.tokens.clock().now() - subject.expires_at()).num_seconds();
        tracing::info!(
            target: "keystone_rs::audit",
            event = "allow_expired_accepted",
            caller_user_id = %caller.user.id,
            subject_audit_id = subject.audit_id().unwrap_or(""),
            seconds_past_expiry = past,
            "expired token accepted under allow_expired"
        );
    }
    let with_catalog = !(query.has("nocatalog") || matches!(subject.scope, Scope::Unscoped));
    // Read before rendering: a write meanwhile makes the cached body stale at once.
    let generation = state.bodies.current_generation();
    let body = match state.bodies.get(&subject.id, with_catalog) {
        Some(body) => body,
        None => {
            let catalog = if with_catalog {
                Some(catalog_for(&state, &subject).await?)
            } else {
                None
            };
            let body = token_body(&subject, catalog.as_deref()).map_err(Error::internal)?;
            state
                .bodies
                .put(&subject.id, with_catalog, generation, body.clone());
            body
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Subject-Token", subject.id.clone()))
        .body(body))
}

/// GET /v3/auth/tokens
pub async fn validate(
    caller: Caller,
    req: HttpRequest,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    validate_or_check(caller, req, query, state, "identity:validate_token").await
}

/// HEAD /v3/auth/tokens: same headers, no body (actix drops it for HEAD).
pub async fn check(
    caller: Caller,
    req: HttpRequest,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    validate_or_check(caller, req, query, state, "identity:check_token").await
}

/// DELETE /v3/auth/tokens: revoke the subject and, by default (Keystone 30), its
/// rescope chain. The subject is validated once, with the window the query asks
/// for (the policy target); an expired token cannot be revoked whatever the window.
pub async fn revoke(
    caller: Caller,
    req: HttpRequest,
    query: QueryPairs,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let action = "identity:revoke_token";
    let (subject, _) = authorize_subject(&caller, &req, &query, &state, action).await?;
    let subject = subject.ok_or_else(no_subject)?;
    if state.tokens.is_expired(&subject) {
        return Err(Error::token_invalid().into());
    }
    let audit_id = subject
        .audit_id()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("token without audit id")))?;
    let cascade = query.truthy("cascade").unwrap_or(true);
    state.revoke.revoke_token(audit_id, cascade).await?;
    Ok(no_content())
}

/// GET /v3/auth/tokens/OS-PKI/revoked: PKI tokens are gone; Keystone answers 403.
pub async fn pki_revoked() -> ApiResult<HttpResponse> {
    Err(ApiError::Service(Error::Forbidden {
        detail: "PKI tokens are not supported".into(),
    }))
}

/// GET /v3/auth/catalog
pub async fn catalog(
    caller: Caller,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    if matches!(caller.scope, Scope::Unscoped) {
        return Err(Error::Forbidden {
            detail: "A scoped token is required to produce a service catalog.".into(),
        }
        .into());
    }
    let catalog = catalog_for(&state, &caller).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"catalog": catalog, "links": {"self": links.at("/v3/auth/catalog")}}),
    ))
}

/// `{"next": null, "self": <base><path>, "previous": null}`: the `/v3/auth/*`
/// listings link to their bare path.
fn bare_links(links: &Links, path: &str) -> Value {
    json!({"next": null, "self": links.at(path), "previous": null})
}

/// GET /v3/auth/projects: projects the caller can scope to (as
/// `/v3/users/{id}/projects` lists them, disabled ones left out).
pub async fn projects(
    caller: Caller,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let filter = ProjectFilter {
        enabled: Some(true),
        ..Default::default()
    };
    let views = state
        .identity
        .project_views_for_user(&caller.user.id, &filter)
        .await?;
    let rendered: Vec<Value> = views
        .iter()
        .map(|v| super::projects::render(&links, v))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"projects": rendered, "links": bare_links(&links, "/v3/auth/projects")}),
    ))
}

/// GET /v3/auth/domains: domains the caller can scope to.
pub async fn domains(
    caller: Caller,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let rendered: Vec<Value> = state
        .assignment
        .domains_for_user(&caller.user.id)
        .await?
        .iter()
        .map(|d| super::domains::render(&links, d))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"domains": rendered, "links": bare_links(&links, "/v3/auth/domains")}),
    ))
}

/// GET /v3/auth/system: whether the caller can scope to the system.
pub async fn system(
    caller: Caller,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let roles = state
        .assignment
        .effective_roles(&caller.user.id, RoleTarget::System)
        .await?;
    let system: Vec<Value> = if roles.is_empty() {
        vec![]
    } else {
        vec![json!({"all": true})]
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"system": system, "links": {"self": links.at("/v3/auth/system")}}),
    ))
}

pub fn routes(r: &mut Router) {
    r.add(
        resource("/v3/auth/tokens")
            .post(issue)
            .get(validate)
            .head(check)
            .delete(revoke),
    )
    .add(resource("/v3/auth/tokens/OS-PKI/revoked").get(pki_revoked))
    .add(resource("/v3/auth/catalog").get(catalog))
    .add(resource("/v3/auth/projects").get(projects))
    .add(resource("/v3/auth/domains").get(domains))
    .add(resource("/v3/auth/system").get(system));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> ApiResult<AuthRequest> {
        parse_auth_request(v.as_object().expect("object"))
    }

    #[test]
    fn password_by_name_needs_a_domain() {
        let err = parse(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "u", "password": "p"}}}}}))
            .expect_err("400");
        assert!(
            err.to_string()
                .starts_with("Expecting to find domain in user."),
            "{err}"
        );
    }

    #[test]
    fn two_scopes_are_refused() {
        let err = parse(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}, "scope": {"project": {"id": "p"}, "domain": {"id": "d"}}}}))
            .expect_err("400");
        assert!(
            err.to_string()
                .starts_with("Expecting to find system, project, domain"),
            "{err}"
        );
    }

    #[test]
    fn scopes_parse() {
        let r = parse(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}, "scope": {"system": {}}}})).expect("ok");
        assert_eq!(r.scope, ScopeRequest::System);
        let r = parse(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}, "scope": "unscoped"}})).expect("ok");
        assert_eq!(r.scope, ScopeRequest::Unscoped);
        let r = parse(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}, "scope": {"project": {"name": "p", "domain": {"name": "Default"}}}}})).expect("ok");
        assert_eq!(
            r.scope,
            ScopeRequest::ProjectName {
                name: "p".into(),
                domain: NamedRef::Name("Default".into())
            }
        );
    }

    #[test]
    fn missing_method_object_and_bad_types() {
        let err = parse(json!({"auth": {"identity": {"methods": ["password"]}}})).expect_err("400");
        assert!(err
            .to_string()
            .starts_with("Expecting to find password in identity."));
        let err = parse(json!({"auth": {"identity": {"methods": "password"}}})).expect_err("400");
        assert!(err.to_string().contains("methods"));
        let err = parse(json!({"auth": {"identity": {}}})).expect_err("400");
        assert!(err.to_string().contains("'methods' is a required property"));
        let err = parse(json!({"nope": 1})).expect_err("400");
        assert!(err
            .to_string()
            .starts_with("Expecting to find auth in request body."));
    }
}
