//! The service registry: every service, built once by `startup::build_services`.
//! The HTTP layer, the CLI and bootstrap reach data only through these.

use std::sync::Arc;

use crate::application_credential::ApplicationCredentialService;
use crate::assignment::AssignmentService;
use crate::auth::AuthService;
use crate::cache::Generation;
use crate::catalog::CatalogProvider;
use crate::config::Settings;
use crate::credential::CredentialService;
use crate::domain_config::DomainConfigService;
use crate::endpoint_policy::EndpointPolicyService;
use crate::health::HealthService;
use crate::identity::IdentityService;
use crate::limit::LimitService;
use crate::policies::PolicyService;
use crate::policy::Enforcer;
use crate::resource::ResourceService;
use crate::revoke::RevokeService;
use crate::token::provider::TokenProvider;

/// The composite services (tokens, auth, trusts, application credentials) embed
/// copies of the others and sit behind `Arc`: moved by value, `Services` filled
/// debug-build stack frames enough to overflow a 2 MiB thread.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub tokens: Arc<TokenProvider>,
    pub auth: Arc<AuthService>,
    pub identity: IdentityService,
    pub resource: ResourceService,
    pub assignment: AssignmentService,
    pub catalog: CatalogProvider,
    pub revoke: RevokeService,
    pub policy: Arc<Enforcer>,
    /// Bumped by every write that can change a validation: what render caches key on.
    pub generation: Generation,
    /// What `/healthcheck` reports.
    pub health: HealthService,
    pub credentials: CredentialService,
    pub limits: LimitService,
    /// Stored policy blobs (`/v3/policies`), never enforced.
    pub policies: PolicyService,
    /// OS-ENDPOINT-POLICY associations and an endpoint's policy.
    pub endpoint_policy: EndpointPolicyService,
    /// Domain configuration (`/v3/domains/{id}/config`).
    pub domain_config: DomainConfigService,
    /// OS-TRUST trusts.
    pub trusts: Arc<crate::trust::TrustService>,
    /// Application credentials and access rules (`/v3/users/{id}/application_credentials`).
    pub application_credentials: Arc<ApplicationCredentialService>,
    /// OS-OAUTH1 consumers, request and access tokens.
    pub oauth1: Arc<crate::oauth1::OAuth1Service>,
}
