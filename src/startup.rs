//! Builds the whole application from settings; tests bind port 0 and talk HTTP to it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tracing::warn;

use crate::api::{self, AppState};
use crate::application_credential::ApplicationCredentialService;
use crate::assignment::AssignmentService;
use crate::auth::AuthService;
use crate::catalog::CatalogProvider;
use crate::clock::Clock;
use crate::config::KeyStoreKind;
use crate::config::Settings;
use crate::credential::{CredentialKeys, CredentialService};
use crate::domain_config::DomainConfigService;
use crate::endpoint_policy::EndpointPolicyService;
use crate::health::HealthService;
use crate::identity::{IdentityService, PasswordHasher};
use crate::limit::LimitService;
use crate::policies::PolicyService;
use crate::policy::Enforcer;
use crate::resource::ResourceService;
use crate::revoke::{RevokeService, RevokeSettings};
use crate::services::Services;
use crate::store::Store;
use crate::telemetry;
use crate::token::keys::{
    DatabaseKeys, KeyEncryptionKey, KeyRepository, KeyRing, ReplicaIdentity, SafetyCheck,
    SharedKeyRing, TokenKeys,
};
use crate::token::payload::AuthMethods;
use crate::token::provider::{TokenProvider, TokenSettings};

/// Memory for validated tokens with `[token] caching` on: about 30,000 tokens.
const TOKEN_CACHE_BYTES: u64 = 128 * 1024 * 1024;
/// Users, projects, domains and (user, scope) role sets kept for validation.
const READ_CACHE_ENTRIES: u64 = 50_000;

/// Services built from settings, shared by the HTTP server, the CLI and bootstrap;
/// also the store, for the few callers below the services (migrations, tests).
pub async fn build_services(settings: Settings, clock: Clock) -> anyhow::Result<(Services, Store)> {
    // Wiring every service makes a large future: on the heap, not the caller's stack
    // (a test thread's 2 MiB overflowed in debug builds).
    Box::pin(wire_services(settings, clock)).await
}

async fn wire_services(settings: Settings, clock: Clock) -> anyhow::Result<(Services, Store)> {
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let store = Store::connect(
        &settings.database.connection,
        settings.database.max_pool_size,
        Duration::from_secs(settings.database.pool_timeout),
    )
    .await
    .with_context(|| format!("connecting to {}", settings.database.connection.redacted()))?;
    if !store.is_migrated().await? {
        anyhow::bail!("the database has no schema yet: run `keystone-rs db sync` first");
    }
    let keys = Arc::new(token_keys(&settings, &store, &clock).await?);
    let token = &settings.token;
    let revoke = RevokeService::load(
        store.clone(),
        clock.clone(),
        RevokeSettings {
            refresh_interval: Duration::from_secs(settings.revoke.refresh_interval.max(1)),
            max_staleness: Duration::from_secs(settings.revoke.max_staleness),
            retention_secs: (token.expiration
                + token.allow_expired_window
                + settings.revoke.expiration_buffer) as i64,
            prune_interval: Duration::from_secs(settings.revoke.prune_interval.max(1)),
        },
    )
    .await
    .context("loading revocation events")?;
    let model = settings.unified_limit.enforcement_model;
    if let Some(max) = model.max_project_depth() {
        let deeper = store.projects_deeper_than(max).await?;
        if !deeper.is_empty() {
            anyhow::bail!(
                "Keystone cannot start due to project hierarchical depth in the current deployment (project_ids: {}) exceeds the enforcement model's maximum limit of {}. Please use a different enforcement model to correct the issue.",
                deeper.join(", "),
                max
            );
        }
    }
    let services = assemble(settings, clock, &store, keys, revoke)?;
    Ok((services, store))
}

/// The synchronous wiring, out of the async fn: in a debug build every temporary
/// here would otherwise sit in the future's poll frame, deep enough to overflow a
/// 2 MiB thread stack.
fn assemble(
    settings: Settings,
    clock: Clock,
    store: &Store,
    keys: Arc<TokenKeys>,
    revoke: RevokeService,
) -> anyhow::Result<Services> {
    let token = &settings.token;
    let hasher = PasswordHasher::new(settings.server.max_concurrent_hashes)?
        .with_nice(settings.server.hash_nice);
    // `[token] caching` also caches what a validation reads (users, projects, domains,
    // effective roles), all under the state generation.
    let cache_ttl = Duration::from_secs(token.cache_time.max(1));
    let with_cache = |capacity: u64| token.caching.then_some(capacity);
    let mut resource = ResourceService::new(
        store.clone(),
        settings.identity.default_domain_id.clone(),
        revoke.clone(),
        match settings.unified_limit.enforcement_model.max_project_depth() {
            Some(model) => settings.default.max_project_tree_depth.min(model),
            None => settings.default.max_project_tree_depth,
        },
    );
    let mut assignment = AssignmentService::new(store.clone());
    if let Some(capacity) = with_cache(READ_CACHE_ENTRIES) {
        resource = resource.with_read_cache(capacity, cache_ttl);
        assignment = assignment.with_read_cache(capacity, cache_ttl);
    }
    let mut identity = IdentityService::new(
        store.clone(),
        resource.clone(),
        revoke.clone(),
        hasher.clone(),
        clock.clone(),
        settings.identity.max_password_length,
    )
    .with_security_compliance(settings.security_compliance.clone());
    if let Some(capacity) = with_cache(READ_CACHE_ENTRIES) {
        identity = identity.with_read_cache(capacity, cache_ttl);
    }
    let trusts = crate::trust::TrustService::new(
        store.clone(),
        identity.clone(),
        resource.clone(),
        assignment.clone(),
        settings.trust.clone(),
        clock.clone(),
    );
    let mut application_credentials = ApplicationCredentialService::new(
        store.clone(),
        hasher,
        identity.clone(),
        resource.clone(),
        assignment.clone(),
        clock.clone(),
    )
    .with_user_limit(settings.application_credential.user_limit);
    if let Some(capacity) = with_cache(READ_CACHE_ENTRIES) {
        application_credentials = application_credentials.with_read_cache(capacity, cache_ttl);
    }
    let oauth1 = crate::oauth1::OAuth1Service::new(
        store.clone(),
        resource.clone(),
        assignment.clone(),
        revoke.clone(),
        clock.clone(),
        settings.oauth1,
    );
    let tokens = TokenProvider::new(
        store.clone(),
        keys,
        AuthMethods::new(settings.auth.methods.clone()),
        TokenSettings {
            expiration_secs: token.expiration as i64,
            allow_expired_window_secs: token.allow_expired_window as i64,
            default_domain_id: settings.identity.default_domain_id.clone(),
            cache_bytes: with_cache(TOKEN_CACHE_BYTES).unwrap_or(0),
            cache_ttl,
        },
        identity.clone(),
        resource.clone(),
        assignment.clone(),
        revoke.clone(),
        clock,
    )
    .with_trusts(trusts.clone())
    .with_application_credentials(application_credentials.clone())
    .with_oauth1(oauth1.clone());
    let auth = AuthService::new(
        identity.clone(),
        resource.clone(),
        assignment.clone(),
        tokens.clone(),
        settings.auth.methods.clone(),
        token.allow_rescope_scoped_token,
    )
    .with_trusts(trusts.clone())
    .with_application_credentials(application_credentials.clone())
    .with_oauth1(oauth1.clone());
    let policy = match &settings.oslo_policy.policy_file {
        Some(path) => Enforcer::load_file(path)
            .with_context(|| format!("loading policy file {}", path.display()))?,
        None => Enforcer::with_defaults(),
    };
    let health = HealthService::new(
        store.clone(),
        revoke.clone(),
        tokens.clone(),
        settings.healthcheck.disable_by_file_path.clone(),
        settings
            .fernet_tokens
            .auto_rotate
            .then_some(settings.fernet_tokens.rotation_interval)
            .flatten(),
    );
    let settings_credential = settings.credential.clone();
    let model = settings.unified_limit.enforcement_model;
    let catalog = CatalogProvider::new(store.clone());
    let policies = PolicyService::new(store.clone());
    let domain_config = DomainConfigService::new(
        store.clone(),
        settings.identity.list_limit,
        settings.identity.default_domain_id.clone(),
        settings.domain_config.allow_unsupported_drivers,
    );
    let services = Services {
        domain_config,
        endpoint_policy: EndpointPolicyService::new(
            store.clone(),
            catalog.clone(),
            policies.clone(),
        ),
        policies,
        settings: Arc::new(settings),
        tokens: Arc::new(tokens),
        auth: Arc::new(auth),
        identity,
        resource,
        assignment,
        catalog,
        revoke,
        policy: Arc::new(policy),
        generation: store.generation().clone(),
        health,
        credentials: CredentialService::new(
            store.clone(),
            CredentialKeys::new(
                &settings_credential.key_repository,
                settings_credential.max_active_keys,
            ),
            settings_credential.user_limit,
        ),
        limits: LimitService::new(store.clone(), model),
        trusts: Arc::new(trusts),
        application_credentials: Arc::new(application_credentials),
        oauth1: Arc::new(oauth1),
    };
    Ok(services)
}

/// The database's key set under the key-encryption key, for the server and the CLI.
pub fn database_keys(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> anyhow::Result<DatabaseKeys> {
    let f = &settings.fernet_tokens;
    let kek = KeyEncryptionKey::load(&f.key_encryption_key_file)?;
    let t = &settings.token;
    Ok(DatabaseKeys::new(
        store.clone(),
        kek,
        clock.clone(),
        f.max_active_keys,
        (t.expiration + t.allow_expired_window) as i64,
    ))
}

async fn token_keys(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> anyhow::Result<TokenKeys> {
    let f = &settings.fernet_tokens;
    match f.key_store {
        KeyStoreKind::File => {
            let repo = KeyRepository::new(f.key_repository.clone(), f.max_active_keys);
            let ring = KeyRing::open(repo, Duration::from_secs(1)).with_context(|| {
                format!(
                    "loading Fernet keys from {} (run `keystone-rs fernet setup`)",
                    f.key_repository.display()
                )
            })?;
            Ok(TokenKeys::File(ring))
        }
        KeyStoreKind::Database => {
            let keys = database_keys(settings, store, clock)?;
            let me = ReplicaIdentity::of_this_process(clock, None);
            let ring = SharedKeyRing::open(keys, me, f.replica_timeout)
                .await
                .context("loading Fernet keys from the database")?;
            Ok(TokenKeys::Database(Arc::new(ring)))
        }
    }
}

/// `auto_rotate` needs a rotation interval and a max_active_keys that keeps every
/// key a token accepted by allow_expired still needs.
fn check_auto_rotation(settings: &Settings) -> anyhow::Result<Option<u64>> {
    let f = &settings.fernet_tokens;
    if !f.auto_rotate {
        return Ok(None);
    }
    let Some(interval) = f.rotation_interval.filter(|i| *i > 0) else {
        anyhow::bail!("[fernet_tokens] auto_rotate = true needs rotation_interval (seconds between rotations)");
    };
    let t = &settings.token;
    let check = SafetyCheck::new(
        f.max_active_keys,
        t.expiration,
        t.allow_expired_window,
        interval,
    );
    if !check.is_safe() {
        anyhow::bail!(
            "refusing to start automatic rotation: {check} Set [fernet_tokens] max_active_keys = {}.",
            check.required
        );
    }
    Ok(Some(interval))
}

/// Connections to accept at once when `[server] max_connections` is 0: the open-file
/// limit (raised to its hard limit first) less a reserve for the database pools,
/// the key files and the listener.
fn connection_budget() -> usize {
    const RESERVE: u64 = 128;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024 - RESERVE as usize;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let budget = soft.saturating_sub(RESERVE).clamp(64, 1 << 20);
    usize::try_from(budget).unwrap_or(1 << 20)
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    store: Store,
    /// `[metrics] bind`: its own listener, and the port it got.
    metrics_server: Option<(u16, Server)>,
}

/// `/metrics` alone, unauthenticated, on `[metrics] bind` (a scrape network).
fn metrics_listener(bind: &str, data: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let listener =
        TcpListener::bind(bind).with_context(|| format!("binding [metrics] bind {bind}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(api::metrics::scrape_open))
            .default_service(web::to(api::not_found))
    })
    .workers(1)
    .listen(listener)?
    .run();
    Ok((port, server))
}

impl Application {
    /// Binds `[server] bind` (tests use port 0) and starts the revocation upkeep.
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let bind = settings.server.bind.clone();
        let workers = settings.server.workers;
        let max_connections = settings.server.max_connections;
        let rotate_every = check_auto_rotation(&settings)?;
        let refresh = Duration::from_secs(settings.revoke.refresh_interval.max(1));
        let metrics_on = settings.metrics.enabled;
        let metrics_bind = settings.metrics.bind.clone();
        if metrics_on && telemetry::metrics::install().is_none() {
            warn!("another metrics recorder is installed: /metrics is off");
        }
        let (services, store) = build_services(settings, clock.clone()).await?;
        let state = AppState::new(services, clock);
        telemetry::metrics::spawn_upkeep();
        state.revoke.spawn_upkeep();
        if let TokenKeys::Database(ring) = state.tokens.keys() {
            ring.announce()
                .await
                .context("recording this replica in the database")?;
            Arc::clone(ring).spawn_upkeep(refresh, rotate_every);
        }
        let listener = TcpListener::bind(&bind).with_context(|| format!("binding {bind}"))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state.clone());
        let data_for_metrics = data.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(from_fn(api::keystone_headers))
                .wrap(Condition::new(metrics_on, from_fn(api::measure)))
                .wrap(from_fn(api::normalize_path))
                .configure(api::routes)
                .default_service(web::to(api::not_found))
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        let workers = if workers > 0 {
            workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let total = match max_connections {
            0 => connection_budget(),
            n => n,
        };
        // Per worker; past it, new connections wait in the listen backlog instead of
        // taking file descriptors the database and the key files need.
        server = server
            .max_connections((total / workers).max(1))
            .client_request_timeout(Duration::from_secs(5));
        let metrics_server = match metrics_bind.filter(|_| metrics_on) {
            Some(bind) => Some(metrics_listener(&bind, data_for_metrics)?),
            None => None,
        };
        Ok(Application {
            port,
            metrics_server,
            server: server.run(),
            state,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The database below the services: for tests that set up state the API cannot.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The `[metrics] bind` listener's port, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics_server {
            Some((_, metrics)) => {
                let (api, _) = tokio::join!(self.server, metrics);
                api
            }
            None => self.server.await,
        }
    }
}
