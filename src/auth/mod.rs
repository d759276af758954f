//! POST /v3/auth/tokens without HTTP: run each identity method, resolve the scope,
//! check the scope carries roles, issue the token.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::application_credential::ApplicationCredentialService;
pub use crate::application_credential::AuthPayload as AppCredPayload;
use crate::assignment::{AssignmentService, RoleTarget};
use crate::error::{Error, Result};
use crate::identity::{IdentityService, UserRef};
use crate::model::{AccessToken, ApplicationCredential, Domain, User};
use crate::oauth1::signature::SignedRequest;
use crate::oauth1::OAuth1Service;
use crate::resource::ResourceService;
use crate::token::provider::{IssueRequest, Scope, Token, TokenProvider};
use crate::trust::TrustService;

/// Methods keystone-rs can run; others may be configured (they keep their bits) but fail.
const IMPLEMENTED_METHODS: &[&str] = &["password", "token", "application_credential", "oauth1"];

/// Methods a token must have been obtained with to be exchanged for another
/// (Keystone 30's delegation guard).
const PRIMARY_METHODS: &[&str] = &[
    "external", "kerberos", "mapped", "openid", "password", "saml2", "token", "totp", "x509",
];

#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub methods: Vec<String>,
    pub password: Option<PasswordMethod>,
    pub token: Option<String>,
    pub scope: ScopeRequest,
    /// The `application_credential` method's payload.
    pub application_credential: Option<AppCredPayload>,
    /// The `oauth1` method: the request as signed (its Authorization header).
    pub oauth1: Option<SignedRequest>,
}

#[derive(Clone)]
pub struct PasswordMethod {
    pub user: UserRef,
    pub password: String,
}

impl std::fmt::Debug for PasswordMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordMethod")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedRef {
    Id(String),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeRequest {
    /// No scope given: the user's default project if usable, else unscoped.
    Default,
    Unscoped,
    ProjectId(String),
    ProjectName {
        name: String,
        domain: NamedRef,
    },
    Domain(NamedRef),
    System,
    Trust(String),
}

#[derive(Clone, Debug)]
pub struct AuthService {
    identity: IdentityService,
    resource: ResourceService,
    assignment: AssignmentService,
    tokens: TokenProvider,
    configured_methods: Vec<String>,
    allow_rescope_scoped_token: bool,
    /// OS-TRUST: trust-scoped tokens (None: refused).
    trusts: Option<TrustService>,
    application_credentials: Option<ApplicationCredentialService>,
    oauth1: Option<OAuth1Service>,
}

/// What the identity methods established.
struct Authenticated {
    user: User,
    methods: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    parent_audit_id: Option<String>,
    /// The token used by the `token` method, for the rescope rules.
    original: Option<std::sync::Arc<Token>>,
    /// The credential the `application_credential` method authenticated.
    application_credential: Option<Arc<ApplicationCredential>>,
    /// The access token the `oauth1` method verified.
    oauth1: Option<Arc<AccessToken>>,
}

impl AuthService {
    pub fn new(
        identity: IdentityService,
        resource: ResourceService,
        assignment: AssignmentService,
        tokens: TokenProvider,
        configured_methods: Vec<String>,
        allow_rescope_scoped_token: bool,
    ) -> Self {
        AuthService {
            identity,
            resource,
            assignment,
            tokens,
            configured_methods,
            allow_rescope_scoped_token,
            trusts: None,
            application_credentials: None,
            oauth1: None,
        }
    }

    /// Trust-scoped tokens (`"scope": {"OS-TRUST:trust": {"id": ...}}`) through `trusts`.
    pub fn with_trusts(mut self, trusts: TrustService) -> Self {
        self.trusts = Some(trusts);
        self
    }

    /// Enables the `application_credential` method.
    pub fn with_application_credentials(mut self, svc: ApplicationCredentialService) -> Self {
        self.application_credentials = Some(svc);
        self
    }

    /// Enables the `oauth1` method.
    pub fn with_oauth1(mut self, svc: OAuth1Service) -> Self {
        self.oauth1 = Some(svc);
        self
    }

    pub fn configured_methods(&self) -> &[String] {
        &self.configured_methods
    }

    pub async fn authenticate(&self, req: AuthRequest) -> Result<Token> {
        let auth = Box::pin(self.run_methods(&req)).await?;
        if let Some(original) = &auth.original {
            self.check_rescope(original, &req.scope)?;
        }
        let user_domain = self.resource.cached_domain(&auth.user.domain_id).await?;
        if let ScopeRequest::Trust(trust_id) = &req.scope {
            return Box::pin(self.issue_for_trust(auth, user_domain, trust_id)).await;
        }
        let (scope, roles) = match (&auth.application_credential, &auth.oauth1) {
            // Keystone replaces any scope asked for with the access token's project.
            (_, Some(access)) => Box::pin(self.oauth1_scope(&auth.user, access)).await?,
            (Some(cred), None) => {
                // Keystone's ApplicationCredentialAuthError (a 401).
                if req.scope != ScopeRequest::Default {
                    return Err(Error::unauthorized(
                        "Error authenticating with application credential: Application credentials cannot request a scope.",
                    ));
                }
                Box::pin(self.application_credential_scope(&auth.user, cred)).await?
            }
            (None, None) => Box::pin(self.resolve_scope(&auth.user, &req.scope)).await?,
        };
        self.tokens
            .issue(IssueRequest {
                user: auth.user,
                user_domain,
                methods: auth.methods,
                scope,
                roles,
                expires_at: auth.expires_at,
                parent_audit_id: auth.parent_audit_id,
                trust: None,
                application_credential: auth.application_credential,
                oauth1: auth.oauth1,
            })
            .await
    }

    /// A trust-scoped token for the trustee: the trust must be usable (else the
    /// generic 401, as Keystone turns TrustNotFound into Unauthorized), the user its
    /// trustee, the trustor still holding every delegated role; one use is taken
    /// after the token is made, atomically (a lost race discards the token).
    async fn issue_for_trust(
        &self,
        auth: Authenticated,
        user_domain: Domain,
        trust_id: &str,
    ) -> Result<Token> {
        let trusts = self
            .trusts
            .as_ref()
            .ok_or_else(|| Error::unauthorized("trust-scoped tokens are not available"))?;
        trusts.require_enabled()?;
        let trust = match trusts.get_trust(trust_id).await {
            Ok(t) => t,
            Err(Error::NotFound(why)) => return Err(Error::unauthorized(why)),
            Err(e) => return Err(e),
        };
        let project_id = trust
            .project_id
            .clone()
            .ok_or_else(|| Error::unauthorized(format!("trust {trust_id} delegates no project")))?;
        let project = self
            .resource
            .find_cached_project(&project_id)
            .await?
            .ok_or_else(|| Error::unauthorized(format!("project {project_id} not found")))?;
        if !project.enabled {
            return Err(Error::unauthorized(format!(
                "project {project_id} is disabled"
            )));
        }
        let domain = self.resource.cached_domain(&project.domain_id).await?;
        if !domain.enabled {
            return Err(Error::unauthorized(format!(
                "domain {} is disabled",
                domain.id
            )));
        }
        let mut grant = self.tokens.trust_grant(trust, &auth.user).await?;
        let roles = trusts.delegated_roles(&grant.trust).await?;
        grant.roles = self.assignment.role_models(&roles).await?;
        let token = self
            .tokens
            .issue(IssueRequest {
                user: auth.user,
                user_domain,
                methods: auth.methods,
                scope: Scope::Project { project, domain },
                roles,
                expires_at: auth.expires_at,
                parent_audit_id: auth.parent_audit_id,
                trust: Some(std::sync::Arc::new(grant)),
                application_credential: None,
                oauth1: None,
            })
            .await?;
        trusts.consume_use(trust_id).await?;
        Ok(token)
    }

    /// The credential's project, with the credential's roles the user still holds
    /// there (none left: the generic 401).
    async fn application_credential_scope(
        &self,
        user: &User,
        cred: &ApplicationCredential,
    ) -> Result<(Scope, Vec<crate::assignment::RoleRef>)> {
        let project_id = cred.project_id.as_deref().ok_or_else(|| {
            Error::unauthorized(format!("application credential {} has no project", cred.id))
        })?;
        let project = self
            .resource
            .find_cached_project(project_id)
            .await?
            .ok_or_else(|| Error::unauthorized(format!("project {project_id} not found")))?;
        let (scope, roles) = self.project_scope(user, project).await?;
        let roles: Vec<_> = roles
            .into_iter()
            .filter(|r| cred.role_ids.contains(&r.id))
            .collect();
        if roles.is_empty() {
            return Err(Error::unauthorized(format!(
                "user {} holds none of application credential {}'s roles",
                user.id, cred.id
            )));
        }
        Ok((scope, roles))
    }

    /// The access token's project, with its delegated roles (and the roles they
    /// imply) that the user still holds there (none left: the generic 401).
    async fn oauth1_scope(
        &self,
        user: &User,
        access: &AccessToken,
    ) -> Result<(Scope, Vec<crate::assignment::RoleRef>)> {
        let svc = self
            .oauth1
            .as_ref()
            .ok_or_else(|| Error::AuthMethodNotSupported {
                methods: self.configured_methods.clone(),
            })?;
        let project = self
            .resource
            .find_cached_project(&access.project_id)
            .await?
            .ok_or_else(|| {
                Error::unauthorized(format!("project {} not found", access.project_id))
            })?;
        let (scope, held) = self.project_scope(user, project).await?;
        let roles = svc.token_roles(access, held).await?;
        if roles.is_empty() {
            return Err(Error::unauthorized(format!(
                "user {} holds none of access token {}'s roles",
                user.id, access.id
            )));
        }
        Ok((scope, roles))
    }

    /// A project-scoped token for `user` authenticated by `method` outside
    /// `/v3/auth/tokens` (`ec2credential`: `/v3/ec2tokens`, `/v3/s3tokens`). 401 when
    /// the user, the project or its domain is disabled or the user has no role there.
    pub async fn issue_for_project(
        &self,
        user: User,
        project: crate::model::Project,
        method: &str,
    ) -> Result<Token> {
        if !user.enabled {
            return Err(Error::unauthorized(format!("user {} is disabled", user.id)));
        }
        let user_domain = self.resource.cached_domain(&user.domain_id).await?;
        if !user_domain.enabled {
            return Err(Error::unauthorized(format!(
                "domain {} is disabled",
                user_domain.id
            )));
        }
        let (scope, roles) = self.project_scope(&user, project).await?;
        self.tokens
            .issue(IssueRequest {
                user,
                user_domain,
                methods: vec![method.to_string()],
                scope,
                roles,
                expires_at: None,
                parent_audit_id: None,
                trust: None,
                application_credential: None,
                oauth1: None,
            })
            .await
    }

    async fn run_methods(&self, req: &AuthRequest) -> Result<Authenticated> {
        let mut methods: Vec<String> = Vec::new();
        for m in &req.methods {
            if !methods.contains(m) {
                methods.push(m.clone());
            }
        }
        for m in &methods {
            if !self.configured_methods.contains(m) || !IMPLEMENTED_METHODS.contains(&m.as_str()) {
                return Err(Error::AuthMethodNotSupported {
                    methods: self.configured_methods.clone(),
                });
            }
        }
        let mut user: Option<User> = None;
        let mut all_methods = methods.clone();
        let mut expires_at = None;
        let mut parent_audit_id = None;
        let mut original = None;
        let mut application_credential = None;
        let mut oauth1 = None;
        for m in &methods {
            let found = match m.as_str() {
                "password" => {
                    let pw = req
                        .password
                        .as_ref()
                        .ok_or_else(|| Error::validation(missing("password", "identity")))?;
                    self.identity
                        .authenticate_password(&pw.user, &pw.password)
                        .await?
                }
                "token" => {
                    let id = req
                        .token
                        .as_deref()
                        .ok_or_else(|| Error::validation(missing("token", "identity")))?;
                    if id.is_empty() {
                        return Err(Error::not_found("No token in the request"));
                    }
                    // Rescoping never honours allow_expired.
                    let t = self.tokens.validate(id, 0).await?;
                    for old in &t.payload.methods {
                        if !all_methods.contains(old) {
                            all_methods.push(old.clone());
                        }
                    }
                    expires_at = Some(t.expires_at());
                    parent_audit_id = t.parent_audit_id().or(t.audit_id()).map(str::to_string);
                    let u = t.user.clone();
                    original = Some(t);
                    u
                }
                "application_credential" => {
                    let payload = req.application_credential.as_ref().ok_or_else(|| {
                        Error::validation(missing("application_credential", "identity"))
                    })?;
                    let svc = self.application_credentials.as_ref().ok_or_else(|| {
                        Error::AuthMethodNotSupported {
                            methods: self.configured_methods.clone(),
                        }
                    })?;
                    let (user, cred) = svc.authenticate(payload).await?;
                    application_credential = Some(Arc::new(cred));
                    user
                }
                "oauth1" => {
                    let svc =
                        self.oauth1
                            .as_ref()
                            .ok_or_else(|| Error::AuthMethodNotSupported {
                                methods: self.configured_methods.clone(),
                            })?;
                    let signed = req.oauth1.clone().unwrap_or_default();
                    let access = svc.authenticate(&signed).await?;
                    let user = self
                        .identity
                        .find_user(&UserRef::Id(access.authorizing_user_id.clone()))
                        .await?
                        .ok_or_else(|| Error::unauthorized("the access token's user is gone"))?;
                    if !user.enabled {
                        return Err(Error::unauthorized(format!("user {} is disabled", user.id)));
                    }
                    if !self.resource.cached_domain(&user.domain_id).await?.enabled {
                        return Err(Error::unauthorized(format!(
                            "domain {} is disabled",
                            user.domain_id
                        )));
                    }
                    oauth1 = Some(Arc::new(access));
                    user
                }
                _ => {
                    return Err(Error::AuthMethodNotSupported {
                        methods: self.configured_methods.clone(),
                    })
                }
            };
            if let Some(prev) = &user {
                if prev.id != found.id {
                    return Err(Error::unauthorized("User IDs do not match"));
                }
            }
            user = Some(found);
        }
        // `"methods": []` authenticates no one: Keystone's generic 401.
        let user = user.ok_or_else(|| Error::unauthorized("no authentication method given"))?;
        Ok(Authenticated {
            user,
            methods: all_methods,
            expires_at,
            parent_audit_id,
            original,
            application_credential,
            oauth1,
        })
    }

    fn check_rescope(&self, original: &Token, wanted: &ScopeRequest) -> Result<()> {
        if original.trust.is_some() {
            return Err(crate::trust::forbidden_action(
                "Using trust-scoped token to create another token. Create a new trust-scoped token instead",
            ));
        }
        let delegated = original.payload.methods.is_empty()
            || original
                .payload
                .methods
                .iter()
                .any(|m| !PRIMARY_METHODS.contains(&m.as_str()));
        if delegated {
            return Err(Error::ForbiddenAction(
                // Keystone's ForbiddenAction(action=...): its format adds a period.
                "You are not authorized to perform the requested action: Using a delegated token to create another token is not allowed..".into(),
            ));
        }
        let scoped = !matches!(original.scope, Scope::Unscoped);
        if scoped && !self.allow_rescope_scoped_token {
            return Err(Error::Forbidden {
                detail: "rescoping scoped tokens is disabled ([token] allow_rescope_scoped_token)"
                    .into(),
            });
        }
        if matches!(original.scope, Scope::System)
            && matches!(
                wanted,
                ScopeRequest::ProjectId(_)
                    | ScopeRequest::ProjectName { .. }
                    | ScopeRequest::Domain(_)
            )
        {
            return Err(Error::Forbidden {
                detail: "a system-scoped token cannot be rescoped to a project or domain".into(),
            });
        }
        Ok(())
    }

    async fn find_domain(&self, d: &NamedRef) -> Result<Option<Domain>> {
        match d {
            NamedRef::Id(id) => self.resource.find_cached_domain(Some(id), None).await,
            NamedRef::Name(name) => self.resource.find_cached_domain(None, Some(name)).await,
        }
    }

    /// Every failure to scope is the generic 401: the caller learns nothing about
    /// which projects or domains exist.
    async fn resolve_scope(
        &self,
        user: &User,
        wanted: &ScopeRequest,
    ) -> Result<(Scope, Vec<crate::assignment::RoleRef>)> {
        let deny = |why: String| Error::unauthorized(why);
        let project = match wanted {
            ScopeRequest::Unscoped => return Ok((Scope::Unscoped, Vec::new())),
            ScopeRequest::Trust(_) => {
                return Err(deny("a trust scope is resolved by issue_for_trust".into()))
            }
            ScopeRequest::System => {
                let roles = self
                    .assignment
                    .effective_roles(&user.id, RoleTarget::System)
                    .await?;
                if roles.is_empty() {
                    return Err(deny(format!("user {} has no role on the system", user.id)));
                }
                return Ok((Scope::System, roles));
            }
            ScopeRequest::Domain(d) => {
                let domain = self
                    .find_domain(d)
                    .await?
                    .filter(|d| d.enabled)
                    .ok_or_else(|| deny(format!("domain {d:?} not found or disabled")))?;
                let roles = self
                    .assignment
                    .effective_roles(&user.id, RoleTarget::Domain(&domain.id))
                    .await?;
                if roles.is_empty() {
                    return Err(deny(format!(
                        "user {} has no role on domain {}",
                        user.id, domain.id
                    )));
                }
                return Ok((Scope::Domain(domain), roles));
            }
            ScopeRequest::ProjectId(id) => self.resource.find_cached_project(id).await?,
            ScopeRequest::ProjectName { name, domain } => match self.find_domain(domain).await? {
                Some(d) => {
                    self.resource
                        .find_cached_project_by_name(&d.id, name)
                        .await?
                }
                None => None,
            },
            ScopeRequest::Default => {
                let default = match &user.default_project_id {
                    Some(id) => self.resource.find_cached_project(id).await?,
                    None => None,
                };
                match default {
                    Some(p) => match self.project_scope(user, p).await {
                        Ok(scoped) => return Ok(scoped),
                        Err(Error::Unauthorized { .. }) => {
                            return Ok((Scope::Unscoped, Vec::new()))
                        }
                        Err(e) => return Err(e),
                    },
                    None => return Ok((Scope::Unscoped, Vec::new())),
                }
            }
        };
        let project = project.ok_or_else(|| deny(format!("project {wanted:?} not found")))?;
        self.project_scope(user, project).await
    }

    async fn project_scope(
        &self,
        user: &User,
        project: crate::model::Project,
    ) -> Result<(Scope, Vec<crate::assignment::RoleRef>)> {
        if !project.enabled {
            return Err(Error::unauthorized(format!(
                "project {} is disabled",
                project.id
            )));
        }
        let domain = self.resource.cached_domain(&project.domain_id).await?;
        if !domain.enabled {
            return Err(Error::unauthorized(format!(
                "domain {} is disabled",
                domain.id
            )));
        }
        let roles = self
            .assignment
            .effective_roles(&user.id, RoleTarget::Project(&project))
            .await?;
        if roles.is_empty() {
            return Err(Error::unauthorized(format!(
                "user {} has no role on project {}",
                user.id, project.id
            )));
        }
        Ok((Scope::Project { project, domain }, roles))
    }
}

/// Keystone's `delegation.is_delegated_method`: a token obtained with a method other
/// than the primary ones (or with none recorded) is a delegated credential.
pub fn is_delegated(methods: &[String]) -> bool {
    methods.is_empty()
        || methods
            .iter()
            .any(|m| !PRIMARY_METHODS.contains(&m.as_str()))
}

/// Keystone's ValidationError wording for a missing attribute.
pub fn missing(attribute: &str, target: &str) -> String {
    format!(
        "Expecting to find {attribute} in {target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
    )
}
