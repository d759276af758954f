//! OS-TRUST: Keystone's trust manager (`trust/core.py`) and the trust rules of
//! `api/trusts.py` and `TokenModel` (what a trust-scoped token carries), without HTTP.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::assignment::{AssignmentService, RoleRef, RoleTarget};
use crate::clock::Clock;
use crate::config::TrustSection;
use crate::error::{Error, Result};
use crate::identity::IdentityService;
use crate::model::{new_id, Role, Trust, TrustFilter, TrustUse};
use crate::resource::ResourceService;
use crate::store::Store;

/// Keystone's ForbiddenAction text.
pub fn forbidden_action(action: &str) -> Error {
    Error::ForbiddenAction(format!(
        "You are not authorized to perform the requested action: {action}."
    ))
}

/// Keystone's TrustNotFound.
pub fn trust_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find trust: {id}."))
}

/// A role of a create request: by id, or by name (a unique global role).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleSpec {
    Id(String),
    Name(String),
}

/// `POST /v3/OS-TRUST/trusts`, after the schema checks.
#[derive(Clone, Debug)]
pub struct TrustRequest {
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub impersonation: bool,
    pub project_id: Option<String>,
    pub roles: Vec<RoleSpec>,
    pub expires_at: Option<DateTime<Utc>>,
    pub remaining_uses: Option<i64>,
    pub allow_redelegation: Option<bool>,
    pub redelegation_count: Option<i64>,
    pub extra: Map<String, Value>,
}

/// Who is creating the trust.
#[derive(Clone, Debug)]
pub struct Creator<'a> {
    /// The caller's user (the trustor when impersonating through a trust).
    pub user_id: &'a str,
    /// The trust of a trust-scoped caller token.
    pub trust_id: Option<&'a str>,
    /// A delegated token that is not trust-scoped (OAuth1).
    pub other_delegation: bool,
}

#[derive(Clone, Debug)]
pub struct TrustService {
    store: Store,
    identity: IdentityService,
    resource: ResourceService,
    assignment: AssignmentService,
    settings: TrustSection,
    clock: Clock,
}

impl TrustService {
    pub fn new(
        store: Store,
        identity: IdentityService,
        resource: ResourceService,
        assignment: AssignmentService,
        settings: TrustSection,
        clock: Clock,
    ) -> Self {
        TrustService {
            store,
            identity,
            resource,
            assignment,
            settings,
            clock,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// `[trust] enabled = false`: every trust operation is refused.
    pub fn require_enabled(&self) -> Result<()> {
        if self.settings.enabled {
            Ok(())
        } else {
            Err(forbidden_action("Trusts are disabled"))
        }
    }

    /// The stored trust whatever its state, or 404.
    async fn stored(&self, id: &str) -> Result<Trust> {
        self.store
            .get_trust(id)
            .await?
            .ok_or_else(|| trust_not_found(id))
    }

    /// A usable trust (Keystone's `trust_api.get_trust`): expired or used-up trusts
    /// are 404, and a redelegated trust's whole chain is checked.
    pub async fn get_trust(&self, id: &str) -> Result<Trust> {
        let trust = self.get_trust_for_token(id).await?;
        if trust.is_exhausted() {
            return Err(trust_not_found(id));
        }
        Ok(trust)
    }

    /// As [`Self::get_trust`], but a trust whose last use was taken still backs the
    /// tokens issued with it (docs/compatibility.md).
    pub async fn get_trust_for_token(&self, id: &str) -> Result<Trust> {
        let trust = self.stored(id).await?;
        if trust.is_expired(self.clock.now()) {
            return Err(trust_not_found(id));
        }
        if trust.redelegated_trust_id.is_some() {
            let chain = self.pedigree(&trust).await?;
            for pair in chain.windows(2) {
                let (child, parent) = (&pair[0], &pair[1]);
                self.validate_redelegation(parent, child)?;
                match self.identity.cached_user(&parent.trustee_user_id).await {
                    Ok(u) if u.enabled => {}
                    Ok(_) | Err(Error::NotFound(_)) => {
                        return Err(Error::Forbidden {
                            detail: "One of the trust agents is disabled or deleted".into(),
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(trust)
    }

    /// The trust and its ancestors, the trust first (Keystone's `get_trust_pedigree`).
    /// A missing or expired ancestor is the 404 of that ancestor.
    pub async fn pedigree(&self, trust: &Trust) -> Result<Vec<Trust>> {
        let mut chain = vec![trust.clone()];
        let mut next = trust.redelegated_trust_id.clone();
        while let Some(id) = next {
            if chain.iter().any(|t| t.id == id) || chain.len() > 64 {
                break;
            }
            let parent = self.stored(&id).await?;
            if parent.is_expired(self.clock.now()) {
                return Err(trust_not_found(&id));
            }
            next = parent.redelegated_trust_id.clone();
            chain.push(parent);
        }
        Ok(chain)
    }

    /// Keystone's `_validate_redelegation(redelegated_trust, trust)`.
    fn validate_redelegation(&self, parent: &Trust, child: &Trust) -> Result<()> {
        let max = self.settings.max_redelegation_count;
        let depth = parent.redelegation_count.unwrap_or(0);
        if !(0 < depth && depth <= max) {
            return Err(Error::Forbidden {
                detail: format!(
                    "Remaining redelegation depth of {depth} out of allowed range of [0..{max}]"
                ),
            });
        }
        if let Some(uses) = child.remaining_uses {
            return Err(Error::Forbidden {
                detail: format!(
                    "Field \"remaining_uses\" is set to {uses} while it must not be set in order to redelegate a trust"
                ),
            });
        }
        match (child.expires_at, parent.expires_at) {
            (Some(c), Some(p)) if p < c => {
                return Err(Error::Forbidden {
                    detail: "Requested expiration time is more than redelegated trust can provide"
                        .into(),
                })
            }
            (Some(_), None) | (Some(_), Some(_)) | (None, _) => {}
        }
        if !child.role_ids.iter().all(|r| parent.role_ids.contains(r)) {
            return Err(Error::Forbidden {
                detail: "Some of requested roles are not in redelegated trust".into(),
            });
        }
        if !parent.impersonation && child.impersonation {
            return Err(Error::Forbidden {
                detail: format!(
                    "Impersonation is not allowed because redelegated trust does not specify impersonation. Redelegated trust id: {}",
                    parent.id
                ),
            });
        }
        Ok(())
    }

    /// Every trust matching the filter, expired ones included (as Keystone lists).
    pub async fn list_trusts(&self, filter: &TrustFilter) -> Result<Vec<Trust>> {
        Ok(self.store.list_trusts(filter).await?)
    }

    /// The trust's roles that still exist, for rendering.
    pub async fn roles_of(&self, trust: &Trust) -> Result<Vec<Role>> {
        let mut out = Vec::new();
        for id in &trust.role_ids {
            match self.assignment.get_role(id).await {
                Ok(r) => out.push(r),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Creates a trust with Keystone's checks, in its order.
    pub async fn create_trust(&self, creator: Creator<'_>, req: TrustRequest) -> Result<Trust> {
        self.require_enabled()?;
        if req.project_id.as_deref().is_some_and(|p| !p.is_empty()) && req.roles.is_empty() {
            return Err(forbidden_action("At least one role should be specified"));
        }
        if creator.user_id != req.trustor_user_id {
            return Err(forbidden_action(
                "The authenticated user should match the trustor",
            ));
        }
        self.identity.get_user(&req.trustee_user_id).await?;
        let mut role_ids: Vec<String> = Vec::new();
        for spec in &req.roles {
            let id = match spec {
                RoleSpec::Id(id) => id.clone(),
                RoleSpec::Name(name) => self.unique_role_by_name(name).await?,
            };
            if !role_ids.contains(&id) {
                role_ids.push(id);
            }
        }
        // The redelegated trust comes from the caller's token, never from the body.
        let parent = if creator.other_delegation {
            return Err(forbidden_action(
                "Redelegation allowed for delegated by trust only",
            ));
        } else {
            match creator.trust_id {
                Some(id) => Some(self.get_trust(id).await?),
                None => None,
            }
        };
        self.require_trustor_has_roles(&req, parent.as_ref(), &role_ids)
            .await?;
        if let Some(at) = req.expires_at {
            if at < self.clock.now() {
                return Err(Error::validation(
                    "The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
                ));
            }
        }
        let max = self.settings.max_redelegation_count;
        let mut requested = req.redelegation_count;
        let redelegatable = req.allow_redelegation.unwrap_or(false) && requested != Some(0);
        if req.allow_redelegation == Some(true) && !self.settings.allow_redelegation {
            return Err(forbidden_action(
                "Redelegation is disabled ([trust] allow_redelegation)",
            ));
        }
        if !redelegatable {
            requested = Some(0);
            if req.remaining_uses.is_some_and(|n| n <= 0) {
                return Err(Error::validation(
                    "remaining_uses must be a positive integer or null.",
                ));
            }
        } else {
            if let Some(n) = requested {
                if n > max {
                    return Err(Error::Forbidden {
                        detail: format!(
                            "Requested redelegation depth of {n} is greater than allowed {max}"
                        ),
                    });
                }
            }
            if req.remaining_uses.is_some() {
                return Err(Error::validation(
                    "remaining_uses must not be set if redelegation is allowed",
                ));
            }
        }
        let mut trust = Trust {
            id: new_id(),
            trustor_user_id: req.trustor_user_id,
            trustee_user_id: req.trustee_user_id,
            project_id: req.project_id.filter(|p| !p.is_empty()),
            impersonation: req.impersonation,
            expires_at: req.expires_at,
            remaining_uses: req.remaining_uses,
            redelegated_trust_id: None,
            redelegation_count: requested,
            role_ids,
            extra: req.extra,
        };
        if let Some(parent) = &parent {
            trust.redelegated_trust_id = Some(parent.id.clone());
            let remaining = parent.redelegation_count.unwrap_or(0) - 1;
            if redelegatable && requested.is_some_and(|n| n != 0 && n != remaining) {
                return Err(Error::Forbidden {
                    detail: "Modifying \"redelegation_count\" upon redelegation is forbidden. Omitting this parameter is advised.".into(),
                });
            }
            // Keystone's setdefault: only an unset count takes the parent's.
            if requested.is_none() {
                trust.redelegation_count = Some(remaining);
            }
            if trust.expires_at.is_none() {
                trust.expires_at = parent.expires_at;
            }
            for ancestor in self.pedigree(parent).await? {
                self.validate_redelegation(&ancestor, &trust)?;
            }
        }
        if trust.redelegation_count.is_none() {
            trust.redelegation_count = Some(max);
        }
        self.store.create_trust(&trust).await?;
        Ok(trust)
    }

    /// Keystone's `get_unique_role_by_name`.
    async fn unique_role_by_name(&self, name: &str) -> Result<String> {
        let found = self.assignment.list_roles(Some(name), None).await?;
        match found.as_slice() {
            [] => Err(Error::not_found(format!("Role {name} is not defined"))),
            [one] => Ok(one.id.clone()),
            _ => Err(Error::validation(format!(
                "There are multiple role entities named '{name}'. Please use ID instead of names to resolve the ambiguity."
            ))),
        }
    }

    /// `_require_trustor_has_role_in_project`: against the chain's original trustor
    /// and project when redelegating.
    async fn require_trustor_has_roles(
        &self,
        req: &TrustRequest,
        parent: Option<&Trust>,
        role_ids: &[String],
    ) -> Result<()> {
        let Some(project_id) = req.project_id.as_deref().filter(|p| !p.is_empty()) else {
            if let Some(first) = role_ids.first() {
                return Err(crate::assignment::role_not_found(first));
            }
            return Ok(());
        };
        self.resource.get_project(project_id).await?;
        let (trustor, project_id) = match parent {
            Some(p) => {
                let chain = self.pedigree(p).await?;
                let root = chain.last().unwrap_or(p);
                (
                    root.trustor_user_id.clone(),
                    root.project_id.clone().unwrap_or_default(),
                )
            }
            None => (req.trustor_user_id.clone(), project_id.to_string()),
        };
        let held = self.trustor_roles(&trustor, &project_id).await?;
        for id in role_ids {
            if !held.iter().any(|r| &r.id == id) {
                return Err(crate::assignment::role_not_found(id));
            }
        }
        Ok(())
    }

    /// The trustor's effective roles on the project (empty if it is gone).
    async fn trustor_roles(&self, trustor: &str, project_id: &str) -> Result<Vec<RoleRef>> {
        let project = match self.resource.cached_project(project_id).await {
            Ok(p) => p,
            Err(Error::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        self.assignment
            .effective_roles(trustor, RoleTarget::Project(&project))
            .await
    }

    /// The roles a token through `trust` carries (`_get_trust_roles`): the trust's
    /// roles and those they imply, every one still held by the original trustor on
    /// the project; one missing fails the token ("Trustee has no delegated roles.").
    pub async fn delegated_roles(&self, trust: &Trust) -> Result<Vec<RoleRef>> {
        let original_trustor = if trust.redelegated_trust_id.is_some() {
            let chain = self.pedigree(trust).await?;
            chain
                .last()
                .map(|t| t.trustor_user_id.clone())
                .unwrap_or_else(|| trust.trustor_user_id.clone())
        } else {
            trust.trustor_user_id.clone()
        };
        let project_id = trust.project_id.clone().unwrap_or_default();
        let wanted = self.assignment.implied_closure(&trust.role_ids).await?;
        let held = self.trustor_roles(&original_trustor, &project_id).await?;
        for role in &wanted {
            if !held.iter().any(|h| h.id == role.id) {
                return Err(Error::Forbidden {
                    detail: "Trustee has no delegated roles.".into(),
                });
            }
        }
        if wanted.is_empty() {
            return Err(Error::Forbidden {
                detail: "Trustee has no delegated roles.".into(),
            });
        }
        Ok(wanted)
    }

    /// Takes one use after a token was issued (Keystone's `consume_use`).
    pub async fn consume_use(&self, id: &str) -> Result<()> {
        match self.store.consume_trust_use(id).await? {
            TrustUse::Unlimited | TrustUse::Taken => Ok(()),
            TrustUse::Exhausted => Err(Error::Forbidden {
                detail: format!("No remaining uses for trust: {id}."),
            }),
            TrustUse::Missing => Err(Error::unauthorized(format!("Could not find trust: {id}."))),
        }
    }

    /// Deletes the trust and those redelegated from it.
    pub async fn delete_trust(&self, id: &str) -> Result<()> {
        self.require_enabled()?;
        if self.store.delete_trust(id).await? {
            Ok(())
        } else {
            Err(trust_not_found(id))
        }
    }
}
