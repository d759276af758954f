//! Users and groups: password authentication and the writes that must revoke tokens.
//!
//! Every write that must end sessions (disabling a user, setting a password,
//! deleting a user, removing a membership, deleting a group that carried roles)
//! stores its revocation event in the same transaction as the write, then refreshes
//! the revocation index so this process refuses the old tokens at once.

pub mod legacy_hash;
pub mod password;

use crate::cache::{read_through, GenerationCache};
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::SecurityComplianceSection;
use crate::error::{Error, Result};
use crate::model::{
    Group, GroupFilter, NewPassword, Page, PageRequest, PasswordUpdate, ProjectFilter,
    RevocationEventRow, User, UserFilter,
};
use crate::resource::{marker_not_found, ProjectView, ResourceService};
use crate::revoke::RevokeService;
use crate::store::{Store, StoreError};

pub use password::PasswordHasher;

/// How a request names a user: by id, or by name within a domain given by id or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name {
        name: String,
        domain_id: Option<String>,
        domain_name: Option<String>,
    },
}

/// What an update asks of the password (the plain text is hashed here, never stored).
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordChange {
    Keep,
    Clear,
    Set(String),
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswordChange::Keep => "Keep",
            PasswordChange::Clear => "Clear",
            PasswordChange::Set(_) => "Set(***)",
        })
    }
}

/// Keystone's `handle_conflicts` text: the domain is named only when the written
/// attributes carried one (always on create, only if sent on update).
fn on_conflict<'a>(
    entity: &'static str,
    name: &'a str,
    domain_id: Option<&'a str>,
) -> impl FnOnce(StoreError) -> Error + 'a {
    move |e| match e {
        StoreError::Conflict { .. } => Error::Conflict {
            what: match domain_id {
                Some(d) => {
                    format!("{entity} - Duplicate entry found with name {name} at domain ID {d}.")
                }
                None => format!("{entity} - Duplicate entry found with name {name}."),
            },
        },
        other => other.into(),
    }
}

/// Keystone's 404 for a missing membership (`identity/backends/sql.py`).
fn not_a_member(user_id: &str, group_id: &str) -> Error {
    Error::not_found(format!("User '{user_id}' not found in group '{group_id}'"))
}

#[derive(Clone, Debug)]
pub struct IdentityService {
    store: Store,
    resource: ResourceService,
    revoke: RevokeService,
    hasher: PasswordHasher,
    clock: Clock,
    max_password_length: usize,
    compliance: Arc<SecurityComplianceSection>,
    /// Users by id for token validation, when the read cache is on.
    users: Option<GenerationCache<String, Option<User>>>,
}

/// Seconds in a day: Keystone's day-based options.
const DAY: i64 = 86_400;

/// Why a password login was refused: the caller always sees the same 401, the
/// audit log line says which.
fn refusal(reason: &'static str, user_id: Option<&str>) -> Error {
    crate::telemetry::audit::login_refused(reason, user_id);
    Error::unauthorized(match user_id {
        Some(id) => format!("{reason} (user {id})"),
        None => reason.to_string(),
    })
}

impl IdentityService {
    pub fn new(
        store: Store,
        resource: ResourceService,
        revoke: RevokeService,
        hasher: PasswordHasher,
        clock: Clock,
        max_password_length: usize,
    ) -> Self {
        IdentityService {
            store,
            resource,
            revoke,
            hasher,
            clock,
            max_password_length,
            compliance: Arc::new(SecurityComplianceSection::default()),
            users: None,
        }
    }

    /// Applies `[security_compliance]`.
    pub fn with_security_compliance(mut self, compliance: SecurityComplianceSection) -> Self {
        self.compliance = Arc::new(compliance);
        self
    }

    fn today(&self) -> i64 {
        self.clock.now_secs().div_euclid(DAY)
    }

    /// The user as Keystone's `enabled` property sees it: an enabled user inactive for
    /// `disable_user_account_days_inactive` days reads as disabled.
    fn effective(&self, mut user: User) -> User {
        if let Some(max_days) = self.compliance.disable_user_account_days_inactive {
            if user.enabled && !user.option("ignore_user_inactivity") {
                let last = user
                    .login
                    .last_active_at
                    .unwrap_or(user.created_at.div_euclid(DAY));
                if self.today() - last >= max_days {
                    user.enabled = false;
                }
            }
        }
        user
    }

    /// When a password set now expires (`password_expires_days`), unless the user is
    /// exempt; Keystone drops the microseconds.
    fn expiry_from(&self, user: &User, now: i64) -> Option<i64> {
        if user.option("ignore_password_expiry") {
            return None;
        }
        self.compliance.password_expires_days.map(|d| now + d * DAY)
    }

    /// `change_password_upon_first_use`: an administrator's password is born expired.
    fn must_change(&self, user: &User) -> bool {
        self.compliance.change_password_upon_first_use
            && !user.option("ignore_change_password_upon_first_use")
    }

    /// A new password to store for `user`, set by an administrator or its owner.
    async fn new_password(
        &self,
        user: &User,
        password: &str,
        self_service: bool,
    ) -> Result<NewPassword> {
        self.check_password_length(password)?;
        self.check_password_rules(password)?;
        let now = self.clock.now_secs();
        let expires_at = if !self_service && self.must_change(user) {
            Some(now)
        } else {
            self.expiry_from(user, now)
        };
        // Keystone keeps unique_last_password_count passwords, the new one included.
        let keep =
            usize::try_from(self.compliance.unique_last_password_count.max(1) - 1).unwrap_or(0);
        Ok(NewPassword {
            hash: self.hasher.hash(password).await?,
            created_at: now,
            expires_at,
            self_service,
            keep_history: keep,
        })
    }

    /// `[security_compliance] password_regex` (Keystone's `validate_password`).
    fn check_password_rules(&self, password: &str) -> Result<()> {
        let Some(re) = &self.compliance.password_regex else {
            return Ok(());
        };
        match re.compiled.is_match(password) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::validation(format!(
                "The password does not match the requirements: {}.",
                self.compliance
                    .password_regex_description
                    .as_deref()
                    .unwrap_or("None")
            ))),
            Err(e) => {
                tracing::error!(error = %e, "Unable to validate password due to invalid regular expression - password_regex");
                Err(Error::validation(
                    "Password validation error: Unable to validate password due to invalid configuration.",
                ))
            }
        }
    }

    /// Whether `user` is locked out now (Keystone's `_is_account_locked`).
    fn locked(&self, user: &User) -> bool {
        let Some(max) = self.compliance.lockout_failure_attempts else {
            return false;
        };
        if user.option("ignore_lockout_failure_attempts") || user.login.failed_auth_count < max {
            return false;
        }
        let last = user.login.failed_auth_at.unwrap_or(i64::MIN / 2);
        last + self.compliance.lockout_duration > self.clock.now_secs()
    }

    /// Serves [`Self::cached_user`] from memory under the state generation.
    pub fn with_read_cache(mut self, capacity: u64, ttl: std::time::Duration) -> Self {
        self.users = Some(
            GenerationCache::new(self.store.generation().clone(), capacity, ttl).named("users"),
        );
        self
    }

    /// `get_user` for the token paths, from the read cache when it is on. Without
    /// the password hash: tokens and caches have no use for it.
    pub async fn cached_user(&self, id: &str) -> Result<User> {
        let load = || async {
            let user = self.store.get_user(id).await?;
            Ok::<_, Error>(user.map(|u| User {
                password_hash: None,
                ..self.effective(u)
            }))
        };
        let found = read_through(self.users.as_ref(), id.to_string(), load).await?;
        found.ok_or_else(|| Error::not_found(format!("Could not find user: {id}.")))
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.store
            .get_user(id)
            .await?
            .map(|u| self.effective(u))
            .ok_or_else(|| Error::not_found(format!("Could not find user: {id}.")))
    }

    pub async fn find_user(&self, user: &UserRef) -> Result<Option<User>> {
        let found = match user {
            UserRef::Id(id) => self.store.get_user(id).await?,
            UserRef::Name {
                name,
                domain_id,
                domain_name,
            } => {
                let domain = self
                    .resource
                    .find_domain(domain_id.as_deref(), domain_name.as_deref())
                    .await?;
                match domain {
                    Some(d) => self.store.get_user_by_name(&d.id, name).await?,
                    None => None,
                }
            }
        };
        Ok(found.map(|u| self.effective(u)))
    }

    /// Every failure is the same generic 401 and costs one password hash, so neither
    /// the answer nor its timing says whether the user exists or is locked out.
    pub async fn authenticate_password(&self, user: &UserRef, password: &str) -> Result<User> {
        self.check_password(user, password, false).await
    }

    /// `authenticate_password`, optionally accepting an expired password: Keystone lets
    /// a user whose password expired change it with the old one. Keystone's order:
    /// locked, wrong password (counted), disabled, expired; success forgets failures.
    async fn check_password(
        &self,
        user: &UserRef,
        password: &str,
        allow_expired: bool,
    ) -> Result<User> {
        let found = self.find_user(user).await?;
        let locked = found.as_ref().is_some_and(|u| self.locked(u));
        let stored = found.as_ref().and_then(|u| u.password_hash.as_deref());
        let candidate = if password.len() > self.max_password_length {
            ""
        } else {
            password
        };
        // A locked account still costs one verification: the timing says nothing.
        let ok = self.hasher.verify(candidate, stored).await?;
        let legacy = stored
            .filter(|h| legacy_hash::is_legacy(h))
            .map(str::to_string);
        let user = match (found, ok && password.len() <= self.max_password_length) {
            (Some(u), _) if locked => return Err(refusal("account locked", Some(&u.id))),
            (Some(u), true) => u,
            (Some(u), false) => {
                self.store
                    .record_failed_auth(
                        &u.id,
                        self.clock.now_secs(),
                        self.compliance.lockout_failure_attempts,
                        self.compliance.lockout_duration,
                    )
                    .await?;
                let reaches = self
                    .compliance
                    .lockout_failure_attempts
                    .is_some_and(|max| u.login.failed_auth_count + 1 >= max)
                    && !u.option("ignore_lockout_failure_attempts");
                let reason = if reaches {
                    "invalid password, account now locked"
                } else {
                    "invalid password"
                };
                return Err(refusal(reason, Some(&u.id)));
            }
            (None, _) => return Err(refusal("unknown user", None)),
        };
        if !user.enabled {
            return Err(refusal("user disabled or inactive", Some(&user.id)));
        }
        // A missing or disabled domain refuses the login; a database that cannot
        // answer is an outage (503), not bad credentials.
        match self.resource.get_domain(&user.domain_id).await {
            Ok(d) if d.enabled => {}
            Ok(_) | Err(Error::NotFound(_)) => {
                return Err(refusal("domain disabled or missing", Some(&user.id)))
            }
            Err(e) => return Err(e),
        }
        if let Some(expires) = user.password_expires_at {
            if expires <= self.clock.now_secs()
                && !allow_expired
                && !user.option("ignore_password_expiry")
            {
                return Err(refusal("password expired", Some(&user.id)));
            }
        }
        let today = self.today();
        let reset = user.login.failed_auth_count > 0;
        let touch = user.login.last_active_at != Some(today);
        // A hash imported from Python Keystone: rehashed with argon2id now, in the
        // same write as the bookkeeping.
        let rehashed = match &legacy {
            Some(_) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        if reset || touch || rehashed.is_some() {
            let rehash = rehashed.as_deref().zip(legacy.as_deref());
            self.store
                .record_login(&user.id, reset, touch.then_some(today), rehash)
                .await?;
        }
        Ok(user)
    }

    /// `GET /v3/users`: one page in id order; an unknown marker is Keystone's 404.
    pub async fn list_users(&self, filter: &UserFilter, page: &PageRequest) -> Result<Page<User>> {
        if let Some(marker) = &page.marker {
            if self.store.get_user(marker).await?.is_none() {
                return Err(marker_not_found(marker));
            }
        }
        let users = self.store.list_users(filter, page).await?;
        let users = users.into_iter().map(|u| self.effective(u)).collect();
        Ok(Page::from_overfetch(users, page.limit))
    }

    /// Creates the user in an existing domain (404 otherwise, as Keystone).
    pub async fn create_user(&self, mut user: User, password: Option<&str>) -> Result<User> {
        user.name = user.name.trim().to_string();
        self.resource.get_domain(&user.domain_id).await?;
        user.created_at = self.clock.now_secs();
        if let Some(pw) = password {
            let p = self.new_password(&user, pw, false).await?;
            user.password_hash = Some(p.hash);
            user.password_expires_at = p.expires_at;
            user.login.password_created_at = Some(p.created_at);
        }
        let created_at = password.map(|_| user.created_at);
        self.store
            .create_user(&user, created_at)
            .await
            .map_err(on_conflict("user", &user.name, Some(&user.domain_id)))?;
        Ok(user)
    }

    /// Sets the password (an administrator's reset) and ends the user's sessions.
    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<()> {
        let user = self.get_user(user_id).await?;
        let new = self.new_password(&user, password, false).await?;
        // A password change ends every session the old password opened.
        let event = self.revoke.user_event(user_id);
        if !self
            .store
            .set_user_password(user_id, &new, &[event], None)
            .await?
        {
            return Err(Error::not_found(format!("Could not find user: {user_id}.")));
        }
        self.revoke.refresh().await
    }

    /// Self-service change: the original password is the credential (Keystone asks
    /// for no token here), and an expired one is still accepted so it can be replaced.
    /// `lock_password`, `minimum_password_age` (for a password its owner set) and the
    /// history (`unique_last_password_count`) apply, as in Keystone's `change_password`.
    pub async fn change_password(
        &self,
        user_id: &str,
        original_password: &str,
        new_password: &str,
    ) -> Result<()> {
        let user = self
            .check_password(&UserRef::Id(user_id.to_string()), original_password, true)
            .await?;
        self.check_password_length(new_password)?;
        self.check_password_rules(new_password)?;
        if user.option("lock_password") {
            return Err(Error::validation(
                "You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password.",
            ));
        }
        if user.login.password_self_service {
            self.check_minimum_age(&user)?;
        }
        self.check_history(&user, new_password).await?;
        let new = self.new_password(&user, new_password, true).await?;
        let event = self.revoke.user_event(&user.id);
        // Compare-and-set on the hash the original password matched: of concurrent
        // changes presenting the same original password, one wins and the others find
        // that password no longer current.
        let changed = self
            .store
            .set_user_password(&user.id, &new, &[event], user.password_hash.as_deref())
            .await?;
        if !changed {
            return Err(Error::unauthorized(format!(
                "the original password of user {} changed meanwhile",
                user.id
            )));
        }
        self.revoke.refresh().await
    }

    /// Keystone's `_validate_minimum_password_age`.
    fn check_minimum_age(&self, user: &User) -> Result<()> {
        let min_days = self.compliance.minimum_password_age;
        let Some(created) = user.login.password_created_at else {
            return Ok(());
        };
        let allowed = created + min_days * DAY;
        let now = self.clock.now_secs();
        if now < allowed {
            return Err(Error::validation(format!(
                "You cannot change your password at this time due to the minimum password age. Once you change your password, it must be used for {min_days} day(s) before it can be changed. Please try again in {} day(s) or contact your administrator to reset your password.",
                // Keystone's timedelta.days of a microsecond clock: a full day less a moment is 0.
                (allowed - now - 1).div_euclid(DAY)
            )));
        }
        Ok(())
    }

    /// Keystone's `_validate_password_history`: the new password may not be any of
    /// the last `unique_last_password_count` (the current one included).
    async fn check_history(&self, user: &User, password: &str) -> Result<()> {
        let unique = self.compliance.unique_last_password_count;
        if unique <= 0 {
            return Ok(());
        }
        let mut recent: Vec<String> = user.password_hash.iter().cloned().collect();
        let history = self.store.password_history(&user.id).await?;
        let earlier = usize::try_from(unique - 1).unwrap_or(0);
        recent.extend(history.into_iter().rev().take(earlier));
        for hash in &recent {
            if self.hasher.verify(password, Some(hash)).await? {
                return Err(Error::validation(format!(
                    "The new password cannot be identical to a previous password. The total number which includes the new password must be unique is {unique}."
                )));
            }
        }
        Ok(())
    }

    pub async fn update_user(&self, user: &User) -> Result<()> {
        self.update_user_with(user, PasswordChange::Keep, false)
            .await
            .map(|_| ())
    }

    /// Writes `user` and the password change; disabling the user or setting a
    /// password revokes its tokens (Keystone's `update_user`). `named_domain` says
    /// whether the request carried `domain_id`, which Keystone's 409 text then names.
    pub async fn update_user_with(
        &self,
        user: &User,
        password: PasswordChange,
        named_domain: bool,
    ) -> Result<User> {
        let before = self.get_user(&user.id).await?;
        let mut user = user.clone();
        user.name = user.name.trim().to_string();
        let update = match password {
            PasswordChange::Keep => PasswordUpdate::Keep,
            PasswordChange::Clear => PasswordUpdate::Clear,
            PasswordChange::Set(pw) => {
                PasswordUpdate::Set(self.new_password(&user, &pw, false).await?)
            }
        };
        let revoke = (before.enabled && !user.enabled) || matches!(update, PasswordUpdate::Set(_));
        // Keystone's `enabled` setter: writing an enabled user forgets its failed
        // attempts (an administrator's unlock) and restarts its inactivity clock.
        let enabled_reset = user.enabled.then(|| {
            self.compliance
                .disable_user_account_days_inactive
                .map(|_| self.today())
        });
        let events: Vec<RevocationEventRow> = if revoke {
            vec![self.revoke.user_event(&user.id)]
        } else {
            Vec::new()
        };
        let domain = named_domain.then_some(user.domain_id.as_str());
        if !self
            .store
            .update_user(&user, &update, &events, enabled_reset)
            .await
            .map_err(on_conflict("user", &user.name, domain))?
        {
            return Err(Error::not_found(format!(
                "Could not find user: {}.",
                user.id
            )));
        }
        if revoke {
            self.revoke.refresh().await?;
        }
        self.get_user(&user.id).await
    }

    pub async fn delete_user(&self, user_id: &str) -> Result<()> {
        let event = self.revoke.user_event(user_id);
        if !self.store.delete_user(user_id, &[event]).await? {
            return Err(Error::not_found(format!("Could not find user: {user_id}.")));
        }
        self.revoke.refresh().await
    }

    pub async fn get_group(&self, id: &str) -> Result<Group> {
        self.store
            .get_group(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find group: {id}.")))
    }

    /// `GET /v3/groups`: one page in id order; an unknown marker is Keystone's 404.
    pub async fn list_groups(
        &self,
        filter: &GroupFilter,
        page: &PageRequest,
    ) -> Result<Page<Group>> {
        if let Some(marker) = &page.marker {
            if self.store.get_group(marker).await?.is_none() {
                return Err(marker_not_found(marker));
            }
        }
        let groups = self.store.list_groups(filter, page).await?;
        Ok(Page::from_overfetch(groups, page.limit))
    }

    /// Creates the group in an existing domain (404 otherwise, as Keystone).
    pub async fn create_group(&self, mut group: Group) -> Result<Group> {
        group.name = group.name.trim().to_string();
        self.resource.get_domain(&group.domain_id).await?;
        self.store.create_group(&group).await.map_err(on_conflict(
            "group",
            &group.name,
            Some(&group.domain_id),
        ))?;
        Ok(group)
    }

    pub async fn update_group(&self, group: &Group, named_domain: bool) -> Result<Group> {
        let mut group = group.clone();
        group.name = group.name.trim().to_string();
        let domain = named_domain.then_some(group.domain_id.as_str());
        if !self.store.update_group(&group).await.map_err(on_conflict(
            "group",
            &group.name,
            domain,
        ))? {
            return Err(Error::not_found(format!(
                "Could not find group: {}.",
                group.id
            )));
        }
        Ok(group)
    }

    /// Deletes the group. As Keystone, its members' tokens are revoked only when the
    /// group carried role assignments: otherwise it granted them nothing.
    pub async fn delete_group(&self, group_id: &str) -> Result<()> {
        let revoke = self.revoke.clone();
        let mut revoked = false;
        let deleted = self
            .store
            .delete_group(group_id, |members, had_roles| {
                revoked = had_roles && !members.is_empty();
                if had_roles {
                    members.iter().map(|m| revoke.user_event(m)).collect()
                } else {
                    Vec::new()
                }
            })
            .await?;
        if !deleted {
            return Err(Error::not_found(format!(
                "Could not find group: {group_id}."
            )));
        }
        if revoked {
            self.revoke.refresh().await?;
        }
        Ok(())
    }

    /// Idempotent, as Keystone: adding a member twice succeeds.
    pub async fn add_user_to_group(&self, user_id: &str, group_id: &str) -> Result<()> {
        self.get_group(group_id).await?;
        self.get_user(user_id).await?;
        Ok(self.store.add_user_to_group(user_id, group_id).await?)
    }

    /// Removing a member revokes its tokens: they may carry the group's roles.
    pub async fn remove_user_from_group(&self, user_id: &str, group_id: &str) -> Result<()> {
        let event = self.revoke.user_event(user_id);
        if !self
            .store
            .remove_user_from_group(user_id, group_id, &[event])
            .await?
        {
            // Keystone names the missing entity first, then the missing membership.
            self.get_group(group_id).await?;
            self.get_user(user_id).await?;
            return Err(not_a_member(user_id, group_id));
        }
        self.revoke.refresh().await
    }

    pub async fn check_user_in_group(&self, user_id: &str, group_id: &str) -> Result<()> {
        self.get_group(group_id).await?;
        self.get_user(user_id).await?;
        if self.store.is_user_in_group(user_id, group_id).await? {
            Ok(())
        } else {
            Err(not_a_member(user_id, group_id))
        }
    }

    pub async fn list_users_in_group(
        &self,
        group_id: &str,
        filter: &UserFilter,
    ) -> Result<Vec<User>> {
        self.get_group(group_id).await?;
        let users = self.store.list_users_in_group(group_id, filter).await?;
        Ok(users.into_iter().map(|u| self.effective(u)).collect())
    }

    pub async fn list_groups_for_user(&self, user_id: &str) -> Result<Vec<Group>> {
        self.get_user(user_id).await?;
        Ok(self.store.list_groups_for_user(user_id).await?)
    }

    /// Projects where the user holds a role (directly, through a group, or inherited
    /// from the project's domain), enabled or not, as Keystone's
    /// `list_projects_for_user`. 404 for an unknown user.
    /// The one listing of a user's projects (a role on them directly, through a
    /// group, or inherited), with their tags, matching `filter`, ordered by name:
    /// `/v3/users/{id}/projects` and `/v3/auth/projects` both answer from here.
    pub async fn project_views_for_user(
        &self,
        user_id: &str,
        filter: &ProjectFilter,
    ) -> Result<Vec<ProjectView>> {
        self.get_user(user_id).await?;
        let ids = self.store.list_project_ids_for_user(user_id).await?;
        let mut projects = self.store.list_projects_by_ids(&ids).await?;
        projects.retain(|p| {
            filter.domain_id.as_ref().is_none_or(|d| &p.domain_id == d)
                && filter.name.as_ref().is_none_or(|n| &p.name == n)
                && filter.enabled.is_none_or(|e| p.enabled == e)
        });
        projects.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        self.resource.project_views(projects).await
    }

    fn check_password_length(&self, password: &str) -> Result<()> {
        if password.len() > self.max_password_length {
            return Err(Error::validation(format!(
                "Invalid input for field 'password': the password is longer than {} characters.",
                self.max_password_length
            )));
        }
        Ok(())
    }
}
