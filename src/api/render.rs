//! Token bodies in Keystone's shape and key order (`render_token_response_from_model`).

use actix_web::web::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::cache::{Generation, GenerationCache};
use crate::catalog::TokenCatalog;
use crate::token::payload::isotime;
use crate::token::provider::{Scope, Token};

/// `password_expires_at`: a naive UTC datetime with microseconds and no `Z`.
pub fn password_expiry(ts: Option<i64>) -> Value {
    ts.and_then(|s| Utc.timestamp_opt(s, 0).single())
        .map(|t: DateTime<Utc>| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()))
        .unwrap_or(Value::Null)
}

/// `{"id", "name"}`: a role, or a domain inside a user or project.
#[derive(Serialize)]
struct Named<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct UserView<'a> {
    domain: Named<'a>,
    id: &'a str,
    name: &'a str,
    password_expires_at: Value,
}

#[derive(Serialize)]
struct ProjectView<'a> {
    domain: Named<'a>,
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct IdOnly<'a> {
    id: &'a str,
}

/// Keystone's `OS-TRUST:trust` section.
#[derive(Serialize)]
struct TrustView<'a> {
    id: &'a str,
    trustor_user: IdOnly<'a>,
    trustee_user: IdOnly<'a>,
    impersonation: bool,
}

#[derive(Serialize)]
struct SystemAll {
    all: bool,
}

/// The fields in Keystone's order; only those of the token's scope are present
/// (system: roles, system; domain: domain, roles; project: project, is_domain, roles).
#[derive(Serialize)]
struct TokenView<'a> {
    methods: &'a [String],
    user: UserView<'a>,
    audit_ids: &'a [String],
    expires_at: String,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<Named<'a>>,
    #[serde(rename = "OS-TRUST:trust", skip_serializing_if = "Option::is_none")]
    trust: Option<TrustView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<ProjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_domain: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<RolesView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<SystemAll>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<&'a TokenCatalog>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_credential: Option<AppCredView<'a>>,
    #[serde(rename = "OS-OAUTH1", skip_serializing_if = "Option::is_none")]
    oauth1: Option<OAuthView<'a>>,
}

/// Keystone's `OS-OAUTH1` section of an OAuth1 token.
#[derive(Serialize)]
struct OAuthView<'a> {
    access_token_id: &'a str,
    consumer_id: &'a str,
}

/// Keystone's `application_credential` section: `access_rules` only when it has some.
#[derive(Serialize)]
struct AppCredView<'a> {
    id: &'a str,
    name: &'a str,
    restricted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_rules: Option<Vec<AccessRuleView<'a>>>,
}

#[derive(Serialize)]
pub struct AccessRuleView<'a> {
    pub id: &'a str,
    pub service: &'a str,
    pub path: &'a str,
    pub method: &'a str,
}

impl<'a> AccessRuleView<'a> {
    pub fn of(r: &'a crate::model::AccessRule) -> Self {
        AccessRuleView {
            id: &r.id,
            service: &r.service,
            path: &r.path,
            method: &r.method,
        }
    }
}

/// {id, name} per role; whole role references for a trust-scoped token (Keystone's
/// `_get_trust_roles` appends `get_role`'s answer).
#[derive(Serialize)]
#[serde(untagged)]
enum RolesView<'a> {
    Named(Vec<Named<'a>>),
    Full(Vec<serde_json::Map<String, serde_json::Value>>),
}

#[derive(Serialize)]
struct TokenBody<'a> {
    token: TokenView<'a>,
}

fn named<'a>(id: &'a str, name: &'a str) -> Named<'a> {
    Named { id, name }
}

/// The response body of a token issue or validation, serialised straight from the
/// token (no intermediate JSON tree: on a validation that misses the body cache this
/// was the largest cost).
pub fn token_body(t: &Token, catalog: Option<&TokenCatalog>) -> Result<Bytes, serde_json::Error> {
    let roles = || {
        Some(RolesView::Named(
            t.roles.iter().map(|r| named(&r.id, &r.name)).collect(),
        ))
    };
    // A trust that impersonates renders its trustor as the user.
    let (user, user_domain) = t.subject();
    let mut view = TokenView {
        methods: &t.payload.methods,
        user: UserView {
            domain: named(&user_domain.id, &user_domain.name),
            id: &user.id,
            name: &user.name,
            password_expires_at: password_expiry(user.password_expires_at),
        },
        audit_ids: &t.payload.audit_ids,
        expires_at: isotime(t.payload.expires_at),
        issued_at: isotime(t.issued_at),
        domain: None,
        trust: None,
        project: None,
        is_domain: None,
        roles: None,
        system: None,
        catalog,
        application_credential: t.application_credential.as_ref().map(|c| AppCredView {
            id: &c.id,
            name: &c.name,
            restricted: !c.unrestricted,
            access_rules: c
                .access_rules
                .as_ref()
                .map(|rules| rules.iter().map(AccessRuleView::of).collect()),
        }),
        oauth1: t.oauth1.as_ref().map(|a| OAuthView {
            access_token_id: &a.id,
            consumer_id: &a.consumer_id,
        }),
    };
    match &t.scope {
        Scope::Unscoped => {}
        Scope::System => {
            view.roles = roles();
            view.system = Some(SystemAll { all: true });
        }
        Scope::Domain(d) => {
            view.domain = Some(named(&d.id, &d.name));
            view.roles = roles();
        }
        Scope::Project { project, domain } => {
            view.project = Some(ProjectView {
                domain: named(&domain.id, &domain.name),
                id: &project.id,
                name: &project.name,
            });
            view.is_domain = Some(false);
            view.roles = roles();
            if let Some(g) = &t.trust {
                // Keystone's trust branch: the section, the project, no is_domain.
                view.trust = Some(TrustView {
                    id: &g.trust.id,
                    trustor_user: IdOnly { id: &g.trustor.id },
                    trustee_user: IdOnly { id: &t.user.id },
                    impersonation: g.trust.impersonation,
                });
                view.is_domain = None;
                view.roles = Some(RolesView::Full(
                    g.roles.iter().map(super::roles::role_fields).collect(),
                ));
            }
        }
    }
    serde_json::to_vec(&TokenBody { token: view }).map(Bytes::from)
}

/// Serialised validation bodies, by token, tagged with the state generation they
/// were rendered at. The body of a token only changes when its roles, names or
/// catalog do, and every such write moves the generation. Validation itself
/// (expiry, revocation, policy) still runs on every request.
#[derive(Clone)]
pub struct BodyCache {
    with_catalog: GenerationCache<String, Bytes>,
    without_catalog: GenerationCache<String, Bytes>,
}

/// Bytes of rendered bodies kept per side (with and without catalog): about 15,000
/// bodies with a 20-endpoint catalog.
const BODY_CACHE_BYTES: u64 = 64 * 1024 * 1024;

fn body_weight(token: &str, body: &Bytes) -> u32 {
    u32::try_from(token.len() + body.len()).unwrap_or(u32::MAX)
}

impl BodyCache {
    pub fn new(generation: Generation) -> Self {
        let ttl = std::time::Duration::from_secs(600);
        BodyCache {
            with_catalog: GenerationCache::weighted(
                generation.clone(),
                BODY_CACHE_BYTES,
                ttl,
                |token: &String, body: &Bytes| body_weight(token, body),
            )
            .named("bodies"),
            without_catalog: GenerationCache::weighted(
                generation,
                BODY_CACHE_BYTES,
                ttl,
                |token: &String, body: &Bytes| body_weight(token, body),
            )
            .named("bodies_nocatalog"),
        }
    }

    fn side(&self, with_catalog: bool) -> &GenerationCache<String, Bytes> {
        if with_catalog {
            &self.with_catalog
        } else {
            &self.without_catalog
        }
    }

    /// The generation to pass to [`Self::put`]: read it before rendering.
    pub fn current_generation(&self) -> u64 {
        self.with_catalog.current_generation()
    }

    pub fn get(&self, token: &str, with_catalog: bool) -> Option<Bytes> {
        self.side(with_catalog).get(token)
    }

    pub fn put(&self, token: &str, with_catalog: bool, rendered_at: u64, body: Bytes) {
        self.side(with_catalog)
            .insert(token.to_string(), rendered_at, body);
    }
}
