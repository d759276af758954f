//! Users and groups: password authentication and the writes that must revoke tokens.

pub mod password;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::resource::ResourceService;
use crate::revoke::RevokeService;
use crate::store::{Store, User};

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

#[derive(Clone, Debug)]
pub struct IdentityService {
    store: Store,
    resource: ResourceService,
    revoke: RevokeService,
    hasher: PasswordHasher,
    clock: Clock,
    max_password_length: usize,
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
        }
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.store
            .get_user(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("Could not find user: {id}.")))
    }

    pub async fn find_user(&self, user: &UserRef) -> Result<Option<User>> {
        match user {
            UserRef::Id(id) => Ok(self.store.get_user(id).await?),
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
                    Some(d) => Ok(self.store.get_user_by_name(&d.id, name).await?),
                    None => Ok(None),
                }
            }
        }
    }

    /// Every failure is the same generic 401 and costs one password hash, so neither
    /// the answer nor its timing says whether the user exists.
    pub async fn authenticate_password(&self, user: &UserRef, password: &str) -> Result<User> {
        let found = self.find_user(user).await?;
        let stored = found.as_ref().and_then(|u| u.password_hash.as_deref());
        let candidate = if password.len() > self.max_password_length {
            ""
        } else {
            password
        };
        let ok = self.hasher.verify(candidate, stored).await?;
        let user = match (found, ok && password.len() <= self.max_password_length) {
            (Some(u), true) => u,
            (Some(u), false) => {
                tracing::info!(user_id = %u.id, "password authentication failed");
                return Err(Error::unauthorized("invalid username or password"));
            }
            (None, _) => return Err(Error::unauthorized("invalid username or password")),
        };
        if !user.enabled {
            return Err(Error::unauthorized(format!("user {} is disabled", user.id)));
        }
        let domain = self.resource.get_domain(&user.domain_id).await;
        if !matches!(domain, Ok(ref d) if d.enabled) {
            return Err(Error::unauthorized(format!(
                "domain {} of user {} is disabled or missing",
                user.domain_id, user.id
            )));
        }
        if let Some(expires) = user.password_expires_at {
            if expires <= self.clock.now_secs() {
                return Err(Error::unauthorized(format!(
                    "The password is expired and needs to be changed for user: {}.",
                    user.id
                )));
            }
        }
        Ok(user)
    }

    pub async fn create_user(&self, mut user: User, password: Option<&str>) -> Result<User> {
        if let Some(pw) = password {
            self.check_password_length(pw)?;
            user.password_hash = Some(self.hasher.hash(pw).await?);
        }
        user.created_at = self.clock.now_secs();
        let created_at = password.map(|_| user.created_at);
        self.store.create_user(&user, created_at).await?;
        Ok(user)
    }

    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<()> {
        self.check_password_length(password)?;
        let hash = self.hasher.hash(password).await?;
        if !self
            .store
            .set_user_password(user_id, &hash, self.clock.now_secs(), None)
            .await?
        {
            return Err(Error::not_found(format!("Could not find user: {user_id}.")));
        }
        // A password change ends every session the old password opened.
        self.revoke.revoke_user(user_id).await
    }

    pub async fn update_user(&self, user: &User) -> Result<()> {
        let before = self.get_user(&user.id).await?;
        self.store.update_user(user).await?;
        if before.enabled && !user.enabled {
            self.revoke.revoke_user(&user.id).await?;
        }
        Ok(())
    }

    pub async fn delete_user(&self, user_id: &str) -> Result<()> {
        if !self.store.delete_user(user_id).await? {
            return Err(Error::not_found(format!("Could not find user: {user_id}.")));
        }
        self.revoke.revoke_user(user_id).await
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
