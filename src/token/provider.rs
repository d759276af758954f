//! Issuing and validating tokens: Keystone's `TokenModel.mint` checks and
//! `_is_valid_token`, in Keystone's order, on every validation.
//!
//! Nothing about a token is trusted from the past: user, domain and project state
//! and the scope's roles are re-read each time, so disabling or removing access
//! takes effect at once even where no revocation event exists.

use crate::telemetry::metrics;
use std::sync::{Arc, Weak};

use chrono::{DateTime, TimeZone, Utc};

use crate::application_credential::ApplicationCredentialService;
use crate::assignment::{AssignmentService, RoleRef, RoleTarget};
use crate::cache::GenerationCache;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::identity::IdentityService;
use crate::model::{AccessToken, ApplicationCredential, Domain, Project, User};
use crate::oauth1::OAuth1Service;
use crate::resource::ResourceService;
use crate::revoke::{RevokeService, TokenValues};
use crate::token::codec;
use crate::token::keys::{KeyError, TokenKeys};
use crate::token::payload::{self, AuthMethods, TokenPayload};
use crate::trust::TrustService;
use fernet::Fernet;

/// What a trust-scoped token was issued through (OS-TRUST), resolved at each
/// validation: the trust, and its trustor (the token's user when impersonating).
#[derive(Clone, Debug)]
pub struct TrustGrant {
    pub trust: crate::model::Trust,
    pub trustor: User,
    pub trustor_domain: Domain,
    /// The delegated roles in full, in the token's role order: Keystone renders a
    /// trust-scoped token's roles as whole role references (id, name, domain_id,
    /// description, options), unlike every other token's {id, name}.
    pub roles: Vec<crate::model::Role>,
}

/// What a token is scoped to, resolved against the database.
#[derive(Clone, Debug)]
pub enum Scope {
    Unscoped,
    Project { project: Project, domain: Domain },
    Domain(Domain),
    System,
}

impl Scope {
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Scope::Project { project, .. } => Some(&project.id),
            _ => None,
        }
    }

    /// Keystone's `assignment_domain_id`: the project's domain, or the scoped domain.
    pub fn assignment_domain_id(&self) -> Option<&str> {
        match self {
            Scope::Project { project, .. } => Some(&project.domain_id),
            Scope::Domain(d) => Some(&d.id),
            _ => None,
        }
    }
}

/// A token that passed every check.
#[derive(Clone, Debug)]
pub struct Token {
    /// The token string as presented, for Keystone's "Could not find token" messages.
    pub id: String,
    pub payload: TokenPayload,
    pub issued_at: DateTime<Utc>,
    pub user: User,
    pub user_domain: Domain,
    pub scope: Scope,
    pub roles: Vec<RoleRef>,
    /// Set on a trust-scoped token; `user` is then the trustee (the payload's user).
    pub trust: Option<Arc<TrustGrant>>,
    /// The application credential an `application_credential` token was issued with.
    pub application_credential: Option<Arc<ApplicationCredential>>,
    /// The OAuth1 access token an `oauth1` token was issued with.
    pub oauth1: Option<Arc<AccessToken>>,
    /// What revocation events are matched against, built once per cached token.
    revocation: std::sync::OnceLock<TokenValues>,
}

impl Token {
    pub fn audit_id(&self) -> Option<&str> {
        self.payload.audit_ids.first().map(String::as_str)
    }

    /// The chain root: the last audit id when the token was rescoped.
    pub fn parent_audit_id(&self) -> Option<&str> {
        if self.payload.audit_ids.len() > 1 {
            self.payload.audit_ids.last().map(String::as_str)
        } else {
            None
        }
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.payload.expires_at
    }

    /// Who the token acts as: the trustor of an impersonating trust, else its user
    /// (Keystone renders and authorizes that user).
    pub fn subject(&self) -> (&User, &Domain) {
        match &self.trust {
            Some(g) if g.trust.impersonation => (&g.trustor, &g.trustor_domain),
            _ => (&self.user, &self.user_domain),
        }
    }

    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }

    fn revocation_values(&self) -> &TokenValues {
        self.revocation.get_or_init(|| TokenValues {
            issued_at: self.issued_at.timestamp(),
            expires_at: self.payload.expires_at.timestamp(),
            audit_id: self.audit_id().map(str::to_string),
            audit_chain_id: self.parent_audit_id().map(str::to_string),
            user_id: self.user.id.clone(),
            identity_domain_id: Some(self.user.domain_id.clone()),
            project_id: self.scope.project_id().map(str::to_string),
            assignment_domain_id: self.scope.assignment_domain_id().map(str::to_string),
            roles: self.roles.iter().map(|r| r.id.clone()).collect(),
            trust_id: self.payload.trust_id.clone(),
            trustor_id: self.trust.as_ref().map(|g| g.trustor.id.clone()),
            trustee_id: self.trust.as_ref().map(|_| self.user.id.clone()),
            consumer_id: self.oauth1.as_ref().map(|a| a.consumer_id.clone()),
        })
    }
}

/// What to put in a new token.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub user: User,
    pub user_domain: Domain,
    pub methods: Vec<String>,
    pub scope: Scope,
    pub roles: Vec<RoleRef>,
    /// Rescoping keeps the original expiry; None means now + `[token] expiration`.
    pub expires_at: Option<DateTime<Utc>>,
    pub parent_audit_id: Option<String>,
    /// A trust-scoped token: `user` is the trustee, `scope` the trust's project.
    pub trust: Option<Arc<TrustGrant>>,
    /// An application-credential token: payload version 9, expiry capped at the
    /// credential's (CVE-2022-2447).
    pub application_credential: Option<Arc<ApplicationCredential>>,
    /// An OAuth1 token: payload version 7, scoped to the access token's project.
    pub oauth1: Option<Arc<AccessToken>>,
}

#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub expiration_secs: i64,
    pub allow_expired_window_secs: i64,
    pub default_domain_id: String,
    /// Bytes of minted tokens kept in memory (`[token] caching`); 0 disables.
    pub cache_bytes: u64,
    pub cache_ttl: std::time::Duration,
}

/// A minted token and the state generation it was read at: an entry from an older
/// generation is a miss, so any write that could change the answer drops it.
/// The key set is the one that decrypted it: while it is still the current set the
/// exact same token string needs no second decrypt (its HMAC was verified with these
/// keys); after a reload the token is decrypted again, so a purged key rejects it.
/// A `Weak` keeps the old set's allocation, so its address cannot be reused.
#[derive(Clone)]
struct CachedToken {
    token: Arc<Token>,
    verified_with: Weak<Vec<Fernet>>,
}

/// What a cached token costs in memory besides its string: the minted `Token`
/// (user, domains, project, roles, revocation values) and the cache's own entry,
/// as measured by RSS growth per token in `make bench` (validate-cold).
const CACHED_TOKEN_BYTES: usize = 4096;

#[derive(Clone)]
pub struct TokenProvider {
    /// Token string -> what `mint` found. Expiry, revocation and the window are
    /// still checked on every hit; only the database reads are saved.
    cache: Option<GenerationCache<String, CachedToken>>,
    keys: Arc<TokenKeys>,
    methods: AuthMethods,
    settings: TokenSettings,
    identity: IdentityService,
    resource: ResourceService,
    assignment: AssignmentService,
    revoke: RevokeService,
    clock: Clock,
    /// OS-TRUST, to resolve trust-scoped tokens (None: they are refused).
    trusts: Option<TrustService>,
    /// Resolves the credential of an application-credential token.
    application_credentials: Option<ApplicationCredentialService>,
    /// Resolves the access token of an OAuth1 token.
    oauth1: Option<OAuth1Service>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Keys that cannot be confirmed (the database is away) are an outage (503); no
/// usable keys at all is a broken deployment (500).
fn key_error(e: KeyError) -> Error {
    match e {
        KeyError::Stale { .. } => Error::Unavailable {
            detail: e.to_string(),
        },
        KeyError::Store(store) => Error::from(store),
        other => Error::internal(other),
    }
}

fn unrecognized() -> Error {
    Error::not_found("Could not recognize Fernet token")
}

impl TokenProvider {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: crate::store::Store,
        keys: Arc<TokenKeys>,
        methods: AuthMethods,
        settings: TokenSettings,
        identity: IdentityService,
        resource: ResourceService,
        assignment: AssignmentService,
        revoke: RevokeService,
        clock: Clock,
    ) -> Self {
        let cache = (settings.cache_bytes > 0).then(|| {
            GenerationCache::weighted(
                store.generation().clone(),
                settings.cache_bytes,
                settings.cache_ttl,
                |token: &String, _: &CachedToken| {
                    u32::try_from(token.len() + CACHED_TOKEN_BYTES).unwrap_or(u32::MAX)
                },
            )
            .named("tokens")
        });
        TokenProvider {
            cache,
            keys,
            methods,
            settings,
            identity,
            resource,
            assignment,
            revoke,
            clock,
            trusts: None,
            application_credentials: None,
            oauth1: None,
        }
    }

    /// Trust-scoped tokens are resolved through `trusts`.
    pub fn with_trusts(mut self, trusts: TrustService) -> Self {
        self.trusts = Some(trusts);
        self
    }

    /// Lets this provider issue and validate application-credential tokens.
    pub fn with_application_credentials(mut self, svc: ApplicationCredentialService) -> Self {
        self.application_credentials = Some(svc);
        self
    }

    /// Lets this provider issue and validate OAuth1 tokens.
    pub fn with_oauth1(mut self, svc: OAuth1Service) -> Self {
        self.oauth1 = Some(svc);
        self
    }

    pub fn methods(&self) -> &AuthMethods {
        &self.methods
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    pub fn allow_expired_window(&self) -> i64 {
        self.settings.allow_expired_window_secs
    }

    /// The keys a server serving tokens uses now.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    pub async fn issue(&self, req: IssueRequest) -> Result<Token> {
        let issued = match self.trust_checks_at_issue(&req).await {
            Ok(()) => self.issue_token(req).await,
            Err(e) => Err(e),
        };
        metrics::issue(issued.is_ok());
        issued
    }

    async fn issue_token(&self, req: IssueRequest) -> Result<Token> {
        let now = self.clock.now();
        // Keystone computes expires_at before taking the Fernet timestamp.
        let mut expires_at = req.expires_at.unwrap_or_else(|| {
            truncate_to_second(now + chrono::Duration::seconds(self.settings.expiration_secs))
        });
        // Never past the trust's own expiry (LP#2156586).
        if let Some(limit) = req.trust.as_ref().and_then(|g| g.trust.expires_at) {
            let limit = truncate_to_second(limit);
            if expires_at > limit {
                expires_at = limit;
            }
        }
        // CVE-2022-2447: never later than the credential (whole seconds, rounded down).
        if let Some(cap) = req
            .application_credential
            .as_ref()
            .and_then(|c| c.expires_at)
            .and_then(|us| Utc.timestamp_opt(us.div_euclid(1_000_000), 0).single())
        {
            expires_at = expires_at.min(cap);
        }
        let mut audit_ids = vec![payload::new_audit_id()];
        audit_ids.extend(req.parent_audit_id);
        let mut p = TokenPayload {
            user_id: req.user.id.clone(),
            methods: req.methods.clone(),
            audit_ids,
            system: None,
            domain_id: None,
            project_id: None,
            trust_id: req.trust.as_ref().map(|g| g.trust.id.clone()),
            federated_group_ids: None,
            identity_provider_id: None,
            protocol_id: None,
            access_token_id: req.oauth1.as_ref().map(|a| a.id.clone()),
            app_cred_id: req.application_credential.as_ref().map(|c| c.id.clone()),
            thumbprint: None,
            expires_at,
        };
        match &req.scope {
            Scope::Unscoped => {}
            Scope::Project { project, .. } => p.project_id = Some(project.id.clone()),
            Scope::Domain(d) => p.domain_id = Some(d.id.clone()),
            Scope::System => p.system = Some("all".into()),
        }
        let plaintext =
            payload::encode_payload(&p, &self.methods, &self.settings.default_domain_id)
                .map_err(Error::internal)?;
        let keys = self.keys.current().await.map_err(key_error)?;
        let primary = keys
            .first()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("the key repository has no keys")))?;
        let issued = now.timestamp().max(0) as u64;
        let id = codec::encrypt(primary, &plaintext, issued);
        // Round-trip the methods through the bitmask, as a later validation will see them.
        p.methods = self.methods.decode(self.methods.encode(&p.methods));
        Ok(Token {
            id,
            payload: p,
            issued_at: Utc.timestamp_opt(issued as i64, 0).single().unwrap_or(now),
            user: req.user,
            user_domain: req.user_domain,
            scope: req.scope,
            roles: req.roles,
            trust: req.trust,
            application_credential: req.application_credential,
            oauth1: req.oauth1,
            revocation: Default::default(),
        })
    }

    /// Decrypts without any expiry check: the payload only.
    pub async fn decode(&self, token: &str) -> Result<(TokenPayload, DateTime<Utc>)> {
        let keys = self.keys.current().await.map_err(key_error)?;
        self.decode_fresh(keys, token)
            .await
            .map(|(p, at, _)| (p, at))
    }

    /// Decrypts with `keys`; if that fails and a newer key set may exist (a shared
    /// ring that went stale while this request waited), once more with that set.
    /// Returns the set that worked.
    async fn decode_fresh(
        &self,
        keys: Arc<Vec<Fernet>>,
        token: &str,
    ) -> Result<(TokenPayload, DateTime<Utc>, Arc<Vec<Fernet>>)> {
        match self.decode_with(&keys, token) {
            Ok((p, at)) => Ok((p, at, keys)),
            Err(e) => match self.keys.newer_than(&keys).await {
                Some(newer) => {
                    let (p, at) = self.decode_with(&newer, token)?;
                    Ok((p, at, newer))
                }
                None => Err(e),
            },
        }
    }

    fn decode_with(&self, keys: &[Fernet], token: &str) -> Result<(TokenPayload, DateTime<Utc>)> {
        let decrypted = codec::decrypt(keys, token).map_err(|e| match e {
            // Keystone raises KeysNotFound (500) before it looks at the token.
            codec::CodecError::NoKeys => Error::internal(e),
            _ => unrecognized(),
        })?;
        let p = payload::decode_payload(
            &decrypted.plaintext,
            &self.methods,
            &self.settings.default_domain_id,
        )
        .map_err(|e| Error::not_found(e.to_string()))?;
        // A correctly signed token whose timestamp no calendar can hold (>= 2^40 s, say)
        // is as unrecognizable as a forged one.
        let issued_at =
            payload::issued_at_from_timestamp(decrypted.timestamp).map_err(|_| unrecognized())?;
        Ok((p, issued_at))
    }

    /// Validates with `window` extra seconds past expiry (0, or allow_expired_window).
    pub async fn validate(&self, token: &str, window_secs: i64) -> Result<Arc<Token>> {
        let minted = match self.minted(token).await {
            Ok(minted) => minted,
            Err(e) => {
                metrics::validation(match e {
                    Error::Unavailable { .. } | Error::Internal(_) => "unavailable",
                    _ => "invalid",
                });
                return Err(e);
            }
        };
        let (outcome, verdict) = match self.check_validity(&minted, window_secs) {
            Ok(true) => ("allow_expired", Ok(())),
            Ok(false) => ("ok", Ok(())),
            Err((outcome, e)) => (outcome, Err(e)),
        };
        metrics::validation(outcome);
        verdict.map(|()| minted)
    }

    /// The token resolved against the database, from the cache when the state it was
    /// read at is still current.
    async fn minted(&self, token: &str) -> Result<Arc<Token>> {
        let keys = self.keys.current().await.map_err(key_error)?;
        let Some(cache) = &self.cache else {
            let (payload, issued_at, _) = self.decode_fresh(keys, token).await?;
            return Ok(Arc::new(self.mint(token, payload, issued_at).await?));
        };
        // Tagged with the generation read *before* minting: a write that lands
        // meanwhile makes this entry stale at once.
        let generation = cache.current_generation();
        if let Some(hit) = cache.get(token) {
            if hit.verified_with.as_ptr() == Arc::as_ptr(&keys) {
                return Ok(hit.token);
            }
            // The keys were reloaded: the token must still decrypt with the new set.
            codec::decrypt(&keys, token).map_err(|_| unrecognized())?;
            cache.insert(
                token.to_string(),
                generation,
                CachedToken {
                    token: hit.token.clone(),
                    verified_with: Arc::downgrade(&keys),
                },
            );
            return Ok(hit.token);
        }
        let (payload, issued_at, keys) = self.decode_fresh(keys, token).await?;
        let minted = Arc::new(self.mint(token, payload, issued_at).await?);
        cache.insert(
            token.to_string(),
            generation,
            CachedToken {
                token: minted.clone(),
                verified_with: Arc::downgrade(&keys),
            },
        );
        Ok(minted)
    }

    /// Resolves the payload against the database (Keystone's `TokenModel.mint`).
    async fn mint(&self, token: &str, p: TokenPayload, issued_at: DateTime<Utc>) -> Result<Token> {
        if (p.trust_id.is_some() && self.trusts.is_none())
            || (p.access_token_id.is_some() && self.oauth1.is_none())
            || p.identity_provider_id.is_some()
            || p.thumbprint.is_some()
        {
            // Federated tokens are not issued by keystone-rs yet.
            return Err(Error::not_found(format!("Could not find token: {token}.")));
        }
        if let Some(trust_id) = &p.trust_id {
            return self.mint_trust(token, trust_id.clone(), p, issued_at).await;
        }
        let gone = || Error::not_found(format!("Could not find token: {token}."));
        // An application-credential token lives only as long as its credential: it
        // must exist, belong to the token's user, be scoped to the token's project and
        // not have expired.
        let application_credential = match &p.app_cred_id {
            None => None,
            Some(id) => {
                let svc = self.application_credentials.as_ref().ok_or_else(gone)?;
                let cred = svc.cached(id).await?.ok_or_else(gone)?;
                if cred.user_id != p.user_id
                    || cred.project_id.is_none()
                    || cred.project_id != p.project_id
                    || cred.expired_at(self.clock.now().timestamp_micros())
                {
                    return Err(gone());
                }
                Some(cred)
            }
        };
        // An OAuth1 token lives only as long as its access token (deleted with its
        // consumer), for the access token's user and project.
        let oauth1 = match (&p.access_token_id, &self.oauth1) {
            (Some(id), Some(svc)) => {
                let access = svc.find_access_token(id).await?.ok_or_else(gone)?;
                if access.authorizing_user_id != p.user_id
                    || p.project_id.as_deref() != Some(access.project_id.as_str())
                {
                    return Err(gone());
                }
                Some(Arc::new(access))
            }
            _ => None,
        };
        // 1. resources
        let scope = if let Some(project_id) = &p.project_id {
            let project = self.resource.cached_project(project_id).await?;
            if !project.enabled {
                return Err(Error::not_found(format!(
                    "Unable to validate token because project {project_id} is disabled"
                )));
            }
            let domain = self.enabled_domain(&project.domain_id).await?;
            Scope::Project { project, domain }
        } else if let Some(domain_id) = &p.domain_id {
            Scope::Domain(self.enabled_domain(domain_id).await?)
        } else if p.system.is_some() {
            Scope::System
        } else {
            Scope::Unscoped
        };
        // 2. user
        let user = self.identity.cached_user(&p.user_id).await?;
        let user_domain = self.enabled_domain(&user.domain_id).await?;
        // 3. the scope must still carry roles
        let roles = match &scope {
            Scope::Unscoped => Vec::new(),
            Scope::Project { project, .. } => {
                self.assignment
                    .effective_roles(&user.id, RoleTarget::Project(project))
                    .await?
            }
            Scope::Domain(d) => {
                self.assignment
                    .effective_roles(&user.id, RoleTarget::Domain(&d.id))
                    .await?
            }
            Scope::System => {
                self.assignment
                    .effective_roles(&user.id, RoleTarget::System)
                    .await?
            }
        };
        // Keystone's `_get_application_credential_roles`: the credential's roles that
        // the user still holds.
        let roles = match &application_credential {
            Some(cred) => roles
                .into_iter()
                .filter(|r| cred.role_ids.contains(&r.id))
                .collect(),
            None => roles,
        };
        // Keystone's `_get_oauth_roles`: the delegated roles the user still holds.
        let roles = match (&oauth1, &self.oauth1) {
            (Some(access), Some(svc)) => svc.token_roles(access, roles).await?,
            _ => roles,
        };
        if !matches!(scope, Scope::Unscoped) && roles.is_empty() {
            return Err(Error::not_found(format!("Could not find token: {token}.")));
        }
        Ok(Token {
            id: token.to_string(),
            payload: p,
            issued_at,
            user,
            user_domain,
            scope,
            roles,
            trust: None,
            application_credential,
            oauth1,
            revocation: Default::default(),
        })
    }

    /// A trust-scoped payload (version 3): Keystone's `mint` trust checks, on live state.
    async fn mint_trust(
        &self,
        token: &str,
        trust_id: String,
        p: TokenPayload,
        issued_at: DateTime<Utc>,
    ) -> Result<Token> {
        let trusts = self
            .trusts
            .as_ref()
            .ok_or_else(|| Error::not_found(format!("Could not find token: {token}.")))?;
        let trust = trusts.get_trust_for_token(&trust_id).await?;
        let project_id = p
            .project_id
            .clone()
            .ok_or_else(|| Error::not_found(format!("Could not find token: {token}.")))?;
        if trust.project_id.as_deref() != Some(project_id.as_str()) {
            return Err(Error::not_found(format!("Could not find token: {token}.")));
        }
        let project = self.resource.cached_project(&project_id).await?;
        if !project.enabled {
            return Err(Error::not_found(format!(
                "Unable to validate token because project {project_id} is disabled"
            )));
        }
        let domain = self.enabled_domain(&project.domain_id).await?;
        let user = self.identity.cached_user(&p.user_id).await?;
        let mut grant = self.trust_grant(trust, &user).await?;
        let user_domain = self.enabled_domain(&user.domain_id).await?;
        let roles = trusts.delegated_roles(&grant.trust).await?;
        grant.roles = self.assignment.role_models(&roles).await?;
        Ok(Token {
            id: token.to_string(),
            payload: p,
            issued_at,
            user,
            user_domain,
            scope: Scope::Project { project, domain },
            roles,
            trust: Some(Arc::new(grant)),
            application_credential: None,
            oauth1: None,
            revocation: Default::default(),
        })
    }

    /// `_validate_token_user` for a trust: the user is its trustee, the trustor and
    /// both domains are enabled.
    pub async fn trust_grant(&self, trust: crate::model::Trust, user: &User) -> Result<TrustGrant> {
        if user.id != trust.trustee_user_id {
            return Err(Error::Forbidden {
                detail: "User is not a trustee.".into(),
            });
        }
        let trustor = self.identity.cached_user(&trust.trustor_user_id).await?;
        let trustor_domain = self.resource.cached_domain(&trustor.domain_id).await?;
        if !trustor_domain.enabled {
            return Err(Error::not_found("Trustor domain is disabled."));
        }
        let trustee_domain = self.resource.cached_domain(&user.domain_id).await?;
        if !trustee_domain.enabled {
            return Err(Error::not_found("Trustee domain is disabled."));
        }
        if !trustor.enabled {
            return Err(Error::Forbidden {
                detail: "Trustor is disabled.".into(),
            });
        }
        Ok(TrustGrant {
            trust,
            trustor,
            trustor_domain,
            roles: Vec::new(),
        })
    }

    /// A trust-scoped issue must name the trust's project and carry its roles.
    async fn trust_checks_at_issue(&self, req: &IssueRequest) -> Result<()> {
        let Some(grant) = &req.trust else {
            return Ok(());
        };
        if self.trusts.is_none() || req.scope.project_id() != grant.trust.project_id.as_deref() {
            return Err(Error::internal(anyhow::anyhow!(
                "a trust-scoped token must be scoped to the trust's project"
            )));
        }
        Ok(())
    }

    async fn enabled_domain(&self, id: &str) -> Result<Domain> {
        let domain = self.resource.cached_domain(id).await?;
        if !domain.enabled {
            return Err(Error::not_found(format!(
                "Unable to validate token because domain {id} is disabled"
            )));
        }
        Ok(domain)
    }

    /// Keystone's `_is_valid_token`: expiry (with the window), revocation, live user
    /// state. Ok(true) when accepted only through the allow_expired window; the
    /// error comes with its metrics outcome.
    fn check_validity(
        &self,
        t: &Token,
        window_secs: i64,
    ) -> std::result::Result<bool, (&'static str, Error)> {
        let now = self.clock.now();
        let deadline = t.payload.expires_at + chrono::Duration::seconds(window_secs.max(0));
        if now >= deadline {
            return Err(("expired", Error::token_invalid()));
        }
        match self.revoke.is_revoked(t.revocation_values()) {
            Ok(false) => {}
            Ok(true) => return Err(("revoked", Error::token_invalid())),
            Err(e) => return Err(("unavailable", e)),
        }
        if !t.user.enabled {
            return Err((
                "invalid",
                Error::not_found(format!("Could not find token: {}.", t.id)),
            ));
        }
        Ok(now >= t.payload.expires_at)
    }

    pub fn is_expired(&self, t: &Token) -> bool {
        self.clock.now() >= t.payload.expires_at
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

fn truncate_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0).single().unwrap_or(t)
}
