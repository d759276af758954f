//! OS-OAUTH1 (Keystone's `oauth_api` and the OAuth parts of its API and auth
//! plugin): consumers, the request token → authorize → access token dance, and the
//! `oauth1` auth method's verification. Signatures are checked by [`signature`],
//! with oauthlib's server rules and the messages Keystone answers with.

pub mod signature;

use rand::seq::SliceRandom;
use serde_json::{Map, Value};

use crate::assignment::{AssignmentService, RoleRef, RoleTarget};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::{new_id, oauth_expired, AccessToken, Consumer, RequestToken, Role};
use crate::resource::ResourceService;
use crate::revoke::RevokeService;
use crate::store::Store;
use signature::{Parsed, Refusal, SignedRequest};

/// Keystone's `VERIFIER_CHARS`: letters and digits without the confusable `jiIl1oO0`.
const VERIFIER_CHARS: &[u8] = b"abcdefghkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A role as an authorize request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleSpec {
    Id(String),
    Name(String),
}

/// `[oauth1]`.
#[derive(Clone, Copy, Debug)]
pub struct OAuth1Settings {
    /// Seconds a request token lives; 0: forever.
    pub request_token_duration: i64,
    /// Seconds an access token lives; 0: forever.
    pub access_token_duration: i64,
}

impl Default for OAuth1Settings {
    fn default() -> Self {
        OAuth1Settings {
            request_token_duration: 28800,
            access_token_duration: 86400,
        }
    }
}

#[derive(Clone)]
pub struct OAuth1Service {
    store: Store,
    resource: ResourceService,
    assignment: AssignmentService,
    revoke: RevokeService,
    clock: Clock,
    settings: OAuth1Settings,
}

impl std::fmt::Debug for OAuth1Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth1Service")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub fn consumer_not_found() -> Error {
    Error::not_found("Consumer not found")
}

pub fn request_token_not_found() -> Error {
    Error::not_found("Request token not found")
}

pub fn access_token_not_found() -> Error {
    Error::not_found("Access token not found")
}

/// Keystone's ValidationError(attribute=..., target='request').
fn missing(attribute: &str) -> Error {
    Error::validation(crate::auth::missing(attribute, "request"))
}

/// Keystone's `validate_oauth_params` on oauthlib's error body.
fn invalid_request(description: &str) -> Error {
    Error::validation(format!(
        "Validation failed with errors: invalid_request, detail message is: {description}."
    ))
}

/// Keystone raises OAuthHeadersMissingError (a 500) without an Authorization
/// header; keystone-rs answers 400 with its message (bad input is never a 500).
fn no_header() -> Error {
    Error::validation(
        "No Authorization headers found, cannot proceed with OAuth related calls. If running under HTTPd or Apache, ensure WSGIPassAuthorization is set to On.",
    )
}

/// Keystone's `utils.isotime(subsecond=True)` of epoch microseconds.
pub fn isotime_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The `oauth_*` parameters of the Authorization header, without checking them
/// (Keystone's `get_oauth_headers`).
fn header_params(req: &SignedRequest) -> Result<Vec<(String, String)>> {
    let header = req.authorization.as_deref().ok_or_else(no_header)?;
    Ok(signature::parse_authorization_header(header).unwrap_or_default())
}

/// A parameter the request cannot do without: missing or empty is Keystone's 400.
fn required_param(params: &[(String, String)], name: &str) -> Result<String> {
    header_param(params, name)
        .map(str::to_string)
        .ok_or_else(|| missing(name))
}

fn header_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

impl OAuth1Service {
    pub fn new(
        store: Store,
        resource: ResourceService,
        assignment: AssignmentService,
        revoke: RevokeService,
        clock: Clock,
        settings: OAuth1Settings,
    ) -> Self {
        OAuth1Service {
            store,
            resource,
            assignment,
            revoke,
            clock,
            settings,
        }
    }

    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    fn expiry(&self, duration_secs: i64) -> Option<i64> {
        (duration_secs > 0).then(|| self.now_us() + duration_secs * 1_000_000)
    }

    fn parse(&self, req: &SignedRequest) -> Result<Parsed> {
        signature::parse(req, self.clock.now().timestamp()).map_err(|r| match r {
            Refusal::NoHeader => no_header(),
            Refusal::Invalid(d) => invalid_request(d),
            Refusal::Unauthorized => Error::unauthorized("Invalid signature"),
        })
    }

    // ---- consumers ----

    /// The secret is made here (a uuid hex, as Keystone) and returned with the consumer.
    pub async fn create_consumer(
        &self,
        description: Option<String>,
        extra: Map<String, Value>,
    ) -> Result<Consumer> {
        let c = Consumer {
            id: new_id(),
            description,
            secret: uuid_hex(),
            extra,
        };
        self.store.insert_consumer(&c).await?;
        Ok(c)
    }

    pub async fn get_consumer(&self, id: &str) -> Result<Consumer> {
        self.store
            .get_consumer(id)
            .await?
            .ok_or_else(consumer_not_found)
    }

    pub async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        Ok(self.store.list_consumers().await?)
    }

    /// `description`: None leaves it, Some(v) sets it; `extra` is merged over the
    /// stored extra attributes (Keystone's `old.update(new)`).
    pub async fn update_consumer(
        &self,
        id: &str,
        description: Option<Option<String>>,
        extra: Map<String, Value>,
    ) -> Result<Consumer> {
        let mut c = self.get_consumer(id).await?;
        if let Some(d) = description {
            c.description = d;
        }
        for (k, v) in extra {
            c.extra.insert(k, v);
        }
        if !self.store.update_consumer(&c).await? {
            return Err(consumer_not_found());
        }
        Ok(c)
    }

    /// Deletes the consumer, its request and access tokens, and revokes every
    /// token issued through it (a `consumer_id` revocation event, as Keystone).
    pub async fn delete_consumer(&self, id: &str) -> Result<()> {
        let event = self.revoke.consumer_event(id);
        if !self.store.delete_consumer(id, &[event]).await? {
            return Err(consumer_not_found());
        }
        self.revoke.refresh().await
    }

    // ---- request tokens ----

    /// `POST /v3/OS-OAUTH1/request_token`, in Keystone's order: the consumer key and
    /// the project header, the project and the consumer exist, then oauthlib's
    /// checks (400) and the signature with the consumer secret (401).
    pub async fn create_request_token(
        &self,
        req: &SignedRequest,
        requested_project_id: Option<&str>,
    ) -> Result<RequestToken> {
        let params = header_params(req)?;
        let consumer_id = required_param(&params, "oauth_consumer_key")?;
        let project_id = requested_project_id
            .filter(|p| !p.is_empty())
            .ok_or_else(|| missing("Requested-Project-Id"))?;
        self.resource.get_project(project_id).await?;
        let consumer = self.get_consumer(&consumer_id).await?;
        let parsed = self.parse(req)?;
        if parsed.oauth.callback.as_deref().is_none_or(str::is_empty) {
            return Err(invalid_request("Missing callback URI."));
        }
        if !parsed.verify(&consumer.secret, "") {
            return Err(Error::unauthorized("Invalid signature"));
        }
        let token = RequestToken {
            id: uuid_hex(),
            request_secret: uuid_hex(),
            verifier: None,
            authorizing_user_id: None,
            requested_project_id: project_id.to_string(),
            role_ids: None,
            consumer_id,
            expires_at: self.expiry(self.settings.request_token_duration),
        };
        self.store.insert_request_token(&token).await?;
        Ok(token)
    }

    /// The unique role with this name (Keystone's `get_unique_role_by_name`).
    async fn role_by_name(&self, roles: &[Role], name: &str) -> Result<String> {
        let found: Vec<&Role> = roles
            .iter()
            .filter(|r| r.name == name && r.domain_id.is_none())
            .collect();
        match found.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(Error::not_found(format!("Could not find role: {name}."))),
            _ => Err(Error::Conflict {
                what: format!("role - Duplicate entry found with name {name}."),
            }),
        }
    }

    /// `PUT /v3/OS-OAUTH1/authorize/{id}` by `user_id`: every role named must be one
    /// the user holds on the request token's project. Returns the verifier.
    pub async fn authorize_request_token(
        &self,
        request_token_id: &str,
        user_id: &str,
        roles: &[RoleSpec],
    ) -> Result<String> {
        let token = self
            .store
            .get_request_token(request_token_id)
            .await?
            .ok_or_else(request_token_not_found)?;
        if oauth_expired(token.expires_at, self.now_us()) {
            return Err(Error::unauthorized("Request token is expired"));
        }
        let all_roles = self.store.list_roles().await?;
        let mut wanted: Vec<String> = Vec::new();
        for spec in roles {
            let id = match spec {
                RoleSpec::Id(id) => id.clone(),
                RoleSpec::Name(name) => self.role_by_name(&all_roles, name).await?,
            };
            if !wanted.contains(&id) {
                wanted.push(id);
            }
        }
        let held = match self
            .resource
            .find_cached_project(&token.requested_project_id)
            .await?
        {
            Some(p) => {
                self.assignment
                    .effective_roles(user_id, RoleTarget::Project(&p))
                    .await?
            }
            None => Vec::new(),
        };
        if !wanted.iter().all(|id| held.iter().any(|r| &r.id == id)) {
            return Err(Error::unauthorized(
                "authorizing user does not have role required",
            ));
        }
        let verifier: String = {
            let mut rng = rand::thread_rng();
            VERIFIER_CHARS
                .choose_multiple(&mut rng, 8)
                .map(|&b| b as char)
                .collect()
        };
        if !self
            .store
            .authorize_request_token(request_token_id, user_id, &wanted, &verifier)
            .await?
        {
            return Err(request_token_not_found());
        }
        Ok(verifier)
    }

    // ---- access tokens ----

    /// `POST /v3/OS-OAUTH1/access_token`: signed with the consumer secret and the
    /// request token's secret, carrying the verifier; consumes the request token.
    pub async fn create_access_token(&self, req: &SignedRequest) -> Result<AccessToken> {
        let params = header_params(req)?;
        let consumer_id = required_param(&params, "oauth_consumer_key")?;
        let request_token_id = required_param(&params, "oauth_token")?;
        let verifier = required_param(&params, "oauth_verifier")?;
        let token = self
            .store
            .get_request_token(&request_token_id)
            .await?
            .ok_or_else(request_token_not_found)?;
        if oauth_expired(token.expires_at, self.now_us()) {
            return Err(Error::unauthorized("Request token is expired"));
        }
        let parsed = self.parse(req)?;
        if !signature::check_key(&request_token_id) {
            return Err(invalid_request("Invalid resource owner key format."));
        }
        if verifier.len() != 8 || !verifier.bytes().all(|b| VERIFIER_CHARS.contains(&b)) {
            return Err(invalid_request("Invalid verifier format."));
        }
        let Some(consumer) = self.store.get_consumer(&consumer_id).await? else {
            return Err(Error::unauthorized("Provided consumer does not exist."));
        };
        if token.consumer_id != consumer_id {
            return Err(Error::unauthorized(
                "Provided consumer key does not match stored consumer key.",
            ));
        }
        if token.verifier.as_deref() != Some(verifier.as_str()) {
            return Err(Error::unauthorized(
                "Provided verifier does not match stored verifier",
            ));
        }
        if !parsed.verify(&consumer.secret, &token.request_secret) {
            return Err(Error::unauthorized("Invalid signature"));
        }
        let Some(user_id) = token.authorizing_user_id.clone() else {
            return Err(Error::unauthorized(
                "Request Token does not have an authorizing user id.",
            ));
        };
        let access = AccessToken {
            id: uuid_hex(),
            access_secret: uuid_hex(),
            authorizing_user_id: user_id,
            project_id: token.requested_project_id.clone(),
            role_ids: token.role_ids.clone().unwrap_or_default(),
            consumer_id,
            expires_at: self.expiry(self.settings.access_token_duration),
        };
        if !self
            .store
            .exchange_request_token(&request_token_id, &access)
            .await?
        {
            return Err(request_token_not_found());
        }
        Ok(access)
    }

    /// The `oauth1` auth method: the access token named by `oauth_token`, unexpired,
    /// with a request signed by its consumer's secret and its own secret.
    pub async fn authenticate(&self, req: &SignedRequest) -> Result<AccessToken> {
        let params = header_params(req)?;
        let access_token_id = required_param(&params, "oauth_token")?;
        let access = self
            .store
            .get_access_token(&access_token_id)
            .await?
            .ok_or_else(access_token_not_found)?;
        if oauth_expired(access.expires_at, self.now_us()) {
            return Err(Error::unauthorized("Access token is expired"));
        }
        let refused = || Error::unauthorized("Could not validate the access token");
        let parsed = signature::parse(req, self.clock.now().timestamp()).map_err(|_| refused())?;
        if !signature::check_key(&access_token_id) {
            return Err(refused());
        }
        let consumer_id = parsed.oauth.consumer_key.clone().unwrap_or_default();
        if consumer_id != access.consumer_id {
            return Err(refused());
        }
        let consumer = self
            .store
            .get_consumer(&consumer_id)
            .await?
            .ok_or_else(refused)?;
        if !parsed.verify(&consumer.secret, &access.access_secret) {
            return Err(refused());
        }
        Ok(access)
    }

    /// For token validation: the access token, None when it is gone.
    pub async fn find_access_token(&self, id: &str) -> Result<Option<AccessToken>> {
        Ok(self.store.get_access_token(id).await?)
    }

    pub async fn list_access_tokens(&self, user_id: &str) -> Result<Vec<AccessToken>> {
        Ok(self.store.list_access_tokens(user_id).await?)
    }

    /// Keystone: the token must be the user's ("User IDs do not match", a 401).
    pub async fn delete_access_token(&self, user_id: &str, id: &str) -> Result<()> {
        let token = self
            .find_access_token(id)
            .await?
            .ok_or_else(access_token_not_found)?;
        if token.authorizing_user_id != user_id {
            return Err(Error::unauthorized("User IDs do not match"));
        }
        if !self.store.delete_access_token(id).await? {
            return Err(access_token_not_found());
        }
        Ok(())
    }

    /// The roles by id, for rendering an access token's roles.
    pub async fn roles_by_id(&self, ids: &[String]) -> Result<Vec<Role>> {
        let all = self.store.list_roles().await?;
        Ok(ids
            .iter()
            .filter_map(|id| all.iter().find(|r| &r.id == id).cloned())
            .collect())
    }

    /// Keystone's `_get_oauth_roles`: the access token's roles with the roles they
    /// imply, kept where the user still holds them on the project (`held`).
    pub async fn token_roles(
        &self,
        access: &AccessToken,
        held: Vec<RoleRef>,
    ) -> Result<Vec<RoleRef>> {
        let delegated = self.assignment.implied_closure(&access.role_ids).await?;
        Ok(delegated
            .into_iter()
            .filter(|r| held.iter().any(|h| h.id == r.id))
            .collect())
    }
}
