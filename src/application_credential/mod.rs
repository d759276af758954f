//! Application credentials and access rules (Keystone's `application_credential_api`):
//! create (the secret shown once, stored as an argon2id hash on the shared hashing
//! pool), list, get, delete; the user's access rules; and the
//! `application_credential` auth method's lookup and secret check.
//!
//! Unknown credential, wrong owner, wrong secret and expired credential are one and
//! the same 401 and cost the same: exactly one argon2 verification (against the
//! dummy hash when there is nothing to verify against).

pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use rand::RngCore;

use crate::assignment::{AssignmentService, RoleRef, RoleTarget};
use crate::cache::{read_through, GenerationCache};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::identity::{IdentityService, PasswordHasher, UserRef};
use crate::model::{
    new_id, AccessRule, AccessRuleDeletion, AccessRuleFilter, AccessRuleSpec,
    ApplicationCredential, Project, Role, User,
};
use crate::resource::ResourceService;
use crate::store::{AccessRuleRefusal, Store};

/// A role as a create request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleSpec {
    Id(String),
    Name(String),
}

/// `POST /v3/users/{user_id}/application_credentials`, checked against the schema.
#[derive(Clone)]
pub struct CreateRequest {
    pub user_id: String,
    pub project: Project,
    /// The roles of the token that asks (the subset rule).
    pub token_roles: Vec<RoleRef>,
    pub id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub secret: Option<String>,
    /// Epoch microseconds.
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    /// None or empty: all the token's roles.
    pub roles: Option<Vec<RoleSpec>>,
    pub access_rules: Vec<AccessRuleSpec>,
}

/// The `application_credential` auth method's payload.
#[derive(Clone)]
pub struct AuthPayload {
    pub id: Option<String>,
    pub name: Option<String>,
    pub user: Option<UserRef>,
    pub secret: String,
}

impl std::fmt::Debug for AuthPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPayload")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("secret", &"***")
            .finish()
    }
}

#[derive(Clone)]
pub struct ApplicationCredentialService {
    store: Store,
    hasher: PasswordHasher,
    identity: IdentityService,
    resource: ResourceService,
    assignment: AssignmentService,
    clock: Clock,
    /// `[application_credential] user_limit` (negative: unlimited).
    user_limit: i64,
    /// Credentials by id for the token paths; every write drops them.
    cache: Option<GenerationCache<String, Option<Arc<ApplicationCredential>>>>,
}

impl std::fmt::Debug for ApplicationCredentialService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationCredentialService")
            .finish_non_exhaustive()
    }
}

pub fn not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find Application Credential: {id}."))
}

fn rule_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find Access Rule: {id}."))
}

/// Keystone's ApplicationCredentialValidationError.
fn invalid(detail: &str) -> Error {
    Error::validation(format!("Invalid application credential: {detail}"))
}

/// The same refusal for every way an authentication can fail.
fn refused(why: &str) -> Error {
    Error::unauthorized(format!(
        "Invalid application credential ID or secret ({why})"
    ))
}

/// 64 random bytes, URL-safe base64 without padding (Keystone's `_generate_secret`).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl ApplicationCredentialService {
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        identity: IdentityService,
        resource: ResourceService,
        assignment: AssignmentService,
        clock: Clock,
    ) -> Self {
        ApplicationCredentialService {
            store,
            hasher,
            identity,
            resource,
            assignment,
            clock,
            user_limit: -1,
            cache: None,
        }
    }

    /// `[application_credential] user_limit`.
    pub fn with_user_limit(mut self, limit: i64) -> Self {
        self.user_limit = limit;
        self
    }

    /// Serves [`Self::cached`] from memory under the state generation.
    pub fn with_read_cache(mut self, capacity: u64, ttl: std::time::Duration) -> Self {
        self.cache = Some(
            GenerationCache::new(self.store.generation().clone(), capacity, ttl)
                .named("application_credentials"),
        );
        self
    }

    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// For the token paths: the credential by id, None when it is gone.
    pub async fn cached(&self, id: &str) -> Result<Option<Arc<ApplicationCredential>>> {
        let load = || async {
            Ok::<_, Error>(
                self.store
                    .get_application_credential(id)
                    .await?
                    .map(Arc::new),
            )
        };
        read_through(self.cache.as_ref(), id.to_string(), load).await
    }

    pub async fn get(&self, id: &str) -> Result<ApplicationCredential> {
        self.store
            .get_application_credential(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn find(&self, id: &str) -> Result<Option<ApplicationCredential>> {
        Ok(self.store.get_application_credential(id).await?)
    }

    pub async fn list(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<ApplicationCredential>> {
        Ok(self
            .store
            .list_application_credentials(user_id, name)
            .await?)
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        if self.store.delete_application_credential(id).await? {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// The roles by id, for rendering (a role deleted since is left out).
    pub async fn roles_by_id(&self) -> Result<HashMap<String, Role>> {
        Ok(self
            .store
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect())
    }

    /// Keystone's create: the roles named (by id or name, plus every role they imply)
    /// must all be in the asking token, or the token's roles are taken; each must be an
    /// effective role of the user on the project; `expires_at` in the future.
    /// Returns the credential and its secret in the clear (shown once).
    pub async fn create(&self, req: CreateRequest) -> Result<(ApplicationCredential, String)> {
        if let Some(e) = req.expires_at {
            if e <= self.now_us() {
                return Err(Error::validation(
                    "The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
                ));
            }
        }
        let all_roles = self.store.list_roles().await?;
        let role_ids: Vec<String> = match req.roles.as_deref() {
            Some(specs) if !specs.is_empty() => {
                let mut ids: Vec<String> = Vec::new();
                for spec in specs {
                    let id = match spec {
                        RoleSpec::Id(id) => id.clone(),
                        RoleSpec::Name(name) => {
                            let found: Vec<&Role> =
                                all_roles.iter().filter(|r| &r.name == name).collect();
                            match found.as_slice() {
                                [] => {
                                    return Err(Error::not_found(format!(
                                        "Role {name} is not defined"
                                    )))
                                }
                                [one] => one.id.clone(),
                                _ => {
                                    return Err(Error::validation(format!(
                                        "There are multiple role entities named '{name}'. Please use ID instead of names to resolve the ambiguity."
                                    )))
                                }
                            }
                        }
                    };
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                // Every role a named role implies, transitively.
                let implied = self.store.list_implied_roles().await?;
                let mut i = 0;
                while i < ids.len() {
                    for (prior, imp) in &implied {
                        if prior == &ids[i] && !ids.contains(imp) {
                            ids.push(imp.clone());
                        }
                    }
                    i += 1;
                }
                for id in &ids {
                    if !req.token_roles.iter().any(|r| &r.id == id) {
                        return Err(invalid(
                            "Cannot create an application credential with unassigned role",
                        ));
                    }
                }
                ids
            }
            _ => req.token_roles.iter().map(|r| r.id.clone()).collect(),
        };
        let held = self
            .assignment
            .effective_roles(&req.user_id, RoleTarget::Project(&req.project))
            .await?;
        for id in &role_ids {
            if !held.iter().any(|r| &r.id == id) {
                return Err(invalid(&format!(
                    "Could not find role assignment with role: {id}, user or group: {}, project, domain, or system: {}.",
                    req.user_id, req.project.id
                )));
            }
        }
        let secret = match req.secret {
            Some(s) if !s.is_empty() => s,
            _ => generate_secret(),
        };
        let mut cred = ApplicationCredential {
            id: req.id.filter(|i| !i.is_empty()).unwrap_or_else(new_id),
            name: req.name,
            description: req.description,
            user_id: req.user_id,
            project_id: Some(req.project.id.clone()),
            system: None,
            expires_at: req.expires_at,
            unrestricted: req.unrestricted,
            secret_hash: self.hasher.hash(&secret).await?,
            created_at: self.clock.now_secs(),
            role_ids,
            access_rules: None,
        };
        let linked = self
            .store
            .insert_application_credential(
                &cred,
                &req.access_rules,
                (self.user_limit >= 0).then_some(self.user_limit),
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict { .. } => Error::Conflict {
                    what: format!(
                        "application_credential - Duplicate entry found with name {}.",
                        cred.name
                    ),
                },
                other => other.into(),
            })?;
        match linked {
            Ok(rules) => {
                if !rules.is_empty() {
                    cred.access_rules = Some(rules);
                }
            }
            Err(AccessRuleRefusal::NotFound(id)) => return Err(rule_not_found(&id)),
            // Keystone's ApplicationCredentialLimitExceeded (ForbiddenNotSecurity).
            Err(AccessRuleRefusal::LimitExceeded) => {
                return Err(Error::ForbiddenAction(format!(
                    "Unable to create additional application credentials, maximum of {} already exceeded for user.",
                    self.user_limit
                )))
            }
        }
        Ok((cred, secret))
    }

    pub async fn list_access_rules(
        &self,
        user_id: &str,
        filter: &AccessRuleFilter,
    ) -> Result<Vec<AccessRule>> {
        Ok(self.store.list_access_rules(user_id, filter).await?)
    }

    pub async fn get_access_rule(&self, user_id: &str, id: &str) -> Result<AccessRule> {
        self.store
            .get_access_rule(user_id, id)
            .await?
            .ok_or_else(|| rule_not_found(id))
    }

    pub async fn delete_access_rule(&self, user_id: &str, id: &str) -> Result<()> {
        match self.store.delete_access_rule(user_id, id).await? {
            AccessRuleDeletion::Deleted => Ok(()),
            AccessRuleDeletion::NotFound => Err(rule_not_found(id)),
            // Keystone's ForbiddenNotSecurity: shown verbatim.
            AccessRuleDeletion::InUse => Err(Error::ForbiddenAction(
                "May not delete access rule in use".into(),
            )),
        }
    }

    /// The `application_credential` method: the credential's owner (enabled, in an
    /// enabled domain) and the credential. By id, a `user` given beside it must be
    /// the owner; by name, the user is required. Every refusal is the same 401 after
    /// exactly one argon2 verification.
    pub async fn authenticate(&self, p: &AuthPayload) -> Result<(User, ApplicationCredential)> {
        let (cred, named_user) = match (&p.id, &p.name) {
            (Some(id), _) if !id.is_empty() => {
                let cred = self.store.get_application_credential(id).await?;
                let named = match &p.user {
                    Some(u) => Some(self.identity.find_user(u).await?),
                    None => None,
                };
                (cred, named)
            }
            (_, Some(name)) if !name.is_empty() => {
                let user = p.user.as_ref().ok_or_else(|| {
                    Error::validation(crate::auth::missing("user", "application credential"))
                })?;
                let owner = self.identity.find_user(user).await?;
                let cred = match &owner {
                    Some(u) => self
                        .store
                        .list_application_credentials(&u.id, Some(name))
                        .await?
                        .into_iter()
                        .next(),
                    None => None,
                };
                (cred, Some(owner))
            }
            _ => {
                return Err(Error::validation(crate::auth::missing(
                    "id or name",
                    "application credential",
                )))
            }
        };
        let stored = cred.as_ref().map(|c| c.secret_hash.as_str());
        let ok = self.hasher.verify(&p.secret, stored).await?;
        let Some(cred) = cred else {
            return Err(refused("unknown application credential"));
        };
        if let Some(named) = named_user {
            if named.as_ref().map(|u| u.id.as_str()) != Some(cred.user_id.as_str()) {
                return Err(refused("the user named is not the credential's owner"));
            }
        }
        if !ok {
            return Err(refused("wrong secret"));
        }
        if cred.expired_at(self.now_us()) {
            return Err(refused("expired"));
        }
        // A hash imported from Python Keystone (passlib) is replaced by argon2id on
        // its first successful use, as passwords are.
        if crate::identity::legacy_hash::is_legacy(&cred.secret_hash) {
            let new = self.hasher.hash(&p.secret).await?;
            self.store
                .rehash_application_credential(&cred.id, &new, &cred.secret_hash)
                .await?;
        }
        let user = self
            .identity
            .find_user(&UserRef::Id(cred.user_id.clone()))
            .await?
            .ok_or_else(|| refused("owner gone"))?;
        if !user.enabled {
            return Err(Error::unauthorized(format!("user {} is disabled", user.id)));
        }
        match self.resource.get_domain(&user.domain_id).await {
            Ok(d) if d.enabled => {}
            Ok(_) | Err(Error::NotFound(_)) => {
                return Err(Error::unauthorized(format!(
                    "domain {} is disabled",
                    user.domain_id
                )))
            }
            Err(e) => return Err(e),
        }
        Ok((user, cred))
    }
}
