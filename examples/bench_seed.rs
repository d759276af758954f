//! Seeds a keystone-rs database with the benchmark data set (see bench/README.md).
//!
//! ```text
//! cargo run --release --example bench_seed -- --config-file F --scale default|large \
//!     [--revocation-events N] [--tokens N --tokens-out FILE]
//!     [--cold-tokens N --cold-tokens-out FILE] [--manifest FILE] [--base-url URL]
//! cargo run --release --example bench_seed -- --config-file F --add-revocation-events N \
//!     [--revoked-within SECS]
//! ```
//!
//! It goes through the crate's own library (Store, build_services, bootstrap,
//! TokenProvider), not raw SQL, so the data set is exactly what the server would
//! have written itself. Every user shares one precomputed argon2id hash (OWASP
//! parameters, computed once by `PasswordHasher`) so seeding 100,000 users costs
//! one hash, not 100,000.
//!
//! The data set (names are fixed so the harness and the Python side agree):
//! - `keystone-rs bootstrap` effects: domain `default`, project and user `admin`,
//!   roles admin -> manager -> member -> reader (implied) and `service`, the
//!   identity service with 3 endpoints in RegionOne.
//! - roles `bench-role-0` -> `bench-role-1` -> ... -> `bench-role-4` -> `member`
//!   (10 roles in all, one implied chain 7 long).
//! - projects `bench-project-{i}`, users `bench-user-{i}` (password
//!   `bench-password`), user i holds `bench-role-0` on project `i % projects`.
//! - 6 more services so the catalog has 20 endpoints (3 interfaces each, the
//!   object store with 2); two URLs use `$(project_id)s` substitution.
//! - N revocation events naming random user ids that are not bench users, so they
//!   sit in the index without revoking any benchmarked token, revoked over the last
//!   `--revoked-within` seconds (default a day; keep it under the retention window,
//!   `[token] expiration + allow_expired_window + [revoke] expiration_buffer`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use keystone_rs::bootstrap::{bootstrap, BootstrapOptions};
use keystone_rs::clock::Clock;
use keystone_rs::config::Settings;
use keystone_rs::identity::PasswordHasher;
use keystone_rs::model::{
    ActorKind, Assignment, Endpoint, Project, RevocationEventRow, Role, Service, TargetKind, User,
};
use keystone_rs::startup::build_services;
use keystone_rs::store::Store;
use keystone_rs::token::keys::KeyRepository;
use keystone_rs::token::provider::{IssueRequest, Scope};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";
pub const USER_PASSWORD: &str = "bench-password";
const REGION: &str = "RegionOne";
const CHAIN: usize = 5;

struct Args {
    config_file: PathBuf,
    users: usize,
    projects: usize,
    revocations: usize,
    add_revocations: Option<usize>,
    revoked_within: i64,
    tokens: usize,
    tokens_out: Option<PathBuf>,
    cold_tokens: usize,
    cold_tokens_out: Option<PathBuf>,
    manifest: Option<PathBuf>,
    base_url: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        config_file: PathBuf::new(),
        users: 1_000,
        projects: 100,
        revocations: 0,
        add_revocations: None,
        revoked_within: 86_400,
        tokens: 0,
        tokens_out: None,
        cold_tokens: 0,
        cold_tokens_out: None,
        manifest: None,
        base_url: "http://127.0.0.1:5000".into(),
    };
    let mut it = std::env::args().skip(1);
    let mut config = None;
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--config-file" => config = Some(PathBuf::from(val()?)),
            "--scale" => match val()?.as_str() {
                "default" => {
                    args.users = 1_000;
                    args.projects = 100;
                    args.revocations = 0;
                }
                "large" => {
                    args.users = 100_000;
                    args.projects = 10_000;
                    args.revocations = 100_000;
                }
                other => bail!("unknown scale {other:?} (default|large)"),
            },
            "--users" => args.users = val()?.parse()?,
            "--projects" => args.projects = val()?.parse()?,
            "--revocation-events" => args.revocations = val()?.parse()?,
            "--add-revocation-events" => args.add_revocations = Some(val()?.parse()?),
            "--revoked-within" => args.revoked_within = val()?.parse()?,
            "--tokens" => args.tokens = val()?.parse()?,
            "--tokens-out" => args.tokens_out = Some(PathBuf::from(val()?)),
            "--cold-tokens" => args.cold_tokens = val()?.parse()?,
            "--cold-tokens-out" => args.cold_tokens_out = Some(PathBuf::from(val()?)),
            "--manifest" => args.manifest = Some(PathBuf::from(val()?)),
            "--base-url" => args.base_url = val()?,
            "-h" | "--help" => {
                println!("see the comment at the top of examples/bench_seed.rs");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    args.config_file = config.context("--config-file is required")?;
    if args.users == 0 || args.projects == 0 {
        bail!("--users and --projects must be positive");
    }
    Ok(args)
}

fn id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Revocation events for user ids that exist nowhere: they fill the index and the
/// table without revoking a benchmarked token. `revoked_at` is spread evenly over
/// the last `spread_secs` seconds (a table that filled up over a day, the steady
/// state); 0 puts them all at now (a burst: the server's refresh re-reads the last
/// 60 s of events every second, so a burst is re-read for a minute).
async fn add_revocations(store: &Store, n: usize, spread_secs: i64) -> anyhow::Result<()> {
    let t = Instant::now();
    let ts = now();
    let batch = 5_000;
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let events: Vec<RevocationEventRow> = (done..done + k)
            .map(|i| {
                // Oldest first, so ids and revoked_at grow together as in real life.
                let at = ts - spread_secs + (spread_secs * i as i64) / n.max(1) as i64;
                RevocationEventRow {
                    user_id: Some(id()),
                    issued_before: at,
                    revoked_at: at,
                    ..Default::default()
                }
            })
            .collect();
        store.insert_revocation_events(&events).await?;
        done += k;
    }
    eprintln!(
        "seed: {n} revocation events (revoked over the last {spread_secs} s) in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let settings = Settings::load(Some(&args.config_file))?;
    let store = Store::connect(
        &settings.database.connection,
        2,
        std::time::Duration::from_secs(30),
    )
    .await?;

    if let Some(n) = args.add_revocations {
        if !store.is_migrated().await? {
            bail!("the database is not seeded");
        }
        return add_revocations(&store, n, args.revoked_within).await;
    }

    let t0 = Instant::now();
    store.migrate().await.context("db sync")?;
    let repo = KeyRepository::new(
        settings.fernet_tokens.key_repository.clone(),
        settings.fernet_tokens.max_active_keys,
    );
    repo.setup().context("fernet setup")?;
    let domain_id = settings.identity.default_domain_id.clone();
    let (state, store) = build_services(settings, Clock::system()).await?;
    let base = args.base_url.trim_end_matches('/').to_string();
    let report = bootstrap(
        &state,
        &BootstrapOptions {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
            project_name: "admin".into(),
            role_name: "admin".into(),
            service_name: "keystone".into(),
            region_id: Some(REGION.into()),
            admin_url: Some(format!("{base}/v3")),
            public_url: Some(format!("{base}/v3")),
            internal_url: Some(format!("{base}/v3")),
        },
    )
    .await?;
    if report.created.is_empty() {
        bail!("the database was already seeded: start from an empty one");
    }
    let store = &store;

    // Roles: bench-role-0 -> ... -> bench-role-4 -> member (-> reader).
    let member = store
        .get_global_role_by_name("member")
        .await?
        .context("bootstrap created no member role")?;
    let mut chain = Vec::new();
    for i in 0..CHAIN {
        let r = Role {
            id: id(),
            name: format!("bench-role-{i}"),
            domain_id: None,
            description: String::new(),
            extra: Default::default(),
        };
        store.create_role(&r).await?;
        chain.push(r);
    }
    for w in chain.windows(2) {
        store.create_implied_role(&w[0].id, &w[1].id).await?;
    }
    store
        .create_implied_role(&chain[CHAIN - 1].id, &member.id)
        .await?;
    let role_count = store.list_roles().await?.len();

    // Catalog: 17 endpoints on top of bootstrap's 3 identity endpoints.
    let services: [(&str, &str, &str, &[&str]); 6] = [
        (
            "compute",
            "nova",
            "http://127.0.0.1:8774/v2.1/$(project_id)s",
            &["public", "internal", "admin"],
        ),
        (
            "image",
            "glance",
            "http://127.0.0.1:9292",
            &["public", "internal", "admin"],
        ),
        (
            "network",
            "neutron",
            "http://127.0.0.1:9696",
            &["public", "internal", "admin"],
        ),
        (
            "volumev3",
            "cinderv3",
            "http://127.0.0.1:8776/v3/$(project_id)s",
            &["public", "internal", "admin"],
        ),
        (
            "placement",
            "placement",
            "http://127.0.0.1:8778",
            &["public", "internal", "admin"],
        ),
        (
            "object-store",
            "swift",
            "http://127.0.0.1:8080/v1/AUTH_$(project_id)s",
            &["public", "internal"],
        ),
    ];
    for (ty, name, url, interfaces) in services {
        let s = Service {
            id: id(),
            service_type: ty.into(),
            name: name.into(),
            description: String::new(),
            enabled: true,
            extra: Default::default(),
        };
        store.create_service(&s).await?;
        for interface in interfaces {
            store
                .create_endpoint(&Endpoint {
                    id: id(),
                    service_id: s.id.clone(),
                    interface: (*interface).into(),
                    url: url.into(),
                    region_id: Some(REGION.into()),
                    enabled: true,
                    extra: Default::default(),
                })
                .await?;
        }
    }
    let endpoint_count = store.list_endpoints().await?.len();
    eprintln!(
        "seed: bootstrap, {role_count} roles, {endpoint_count} endpoints in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // Projects.
    let t = Instant::now();
    let mut projects = Vec::with_capacity(args.projects);
    for i in 0..args.projects {
        let p = Project {
            id: id(),
            name: format!("bench-project-{i}"),
            domain_id: domain_id.clone(),
            parent_id: None,
            description: String::new(),
            enabled: true,
            extra: Default::default(),
        };
        store.create_project(&p).await?;
        projects.push(p);
    }
    eprintln!(
        "seed: {} projects in {:.1}s",
        projects.len(),
        t.elapsed().as_secs_f64()
    );

    // Users: one argon2id hash (OWASP parameters) shared by all.
    let t = Instant::now();
    let hash = PasswordHasher::new(1)?.hash(USER_PASSWORD).await?;
    let created = now();
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let u = User {
            id: id(),
            name: format!("bench-user-{i}"),
            domain_id: domain_id.clone(),
            enabled: true,
            default_project_id: None,
            extra: Default::default(),
            password_hash: Some(hash.clone()),
            password_expires_at: None,
            created_at: created,
            options: Default::default(),
            login: Default::default(),
        };
        store.create_user(&u, Some(created)).await?;
        store
            .add_assignment(&Assignment {
                actor: ActorKind::User,
                actor_id: u.id.clone(),
                target: TargetKind::Project,
                target_id: projects[i % projects.len()].id.clone(),
                role_id: chain[0].id.clone(),
                inherited: false,
            })
            .await?;
        users.push(u);
    }
    eprintln!(
        "seed: {} users with {} assignments in {:.1}s",
        users.len(),
        users.len(),
        t.elapsed().as_secs_f64()
    );

    if args.revocations > 0 {
        add_revocations(store, args.revocations, args.revoked_within).await?;
    }

    // Pre-minted subject tokens for validate-many and validate-cold: the server's own
    // TokenProvider, byte for byte what POST /v3/auth/tokens would return for a
    // password login scoped to the user's project; round robin over the users.
    let domain = state.resource.get_domain(&domain_id).await?;
    let mint = async |n: usize, path: &PathBuf| -> anyhow::Result<()> {
        let t = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for i in 0..n {
            let u = i % users.len();
            let token = state
                .tokens
                .issue(IssueRequest {
                    user: users[u].clone(),
                    user_domain: domain.clone(),
                    methods: vec!["password".into()],
                    scope: Scope::Project {
                        project: projects[u % projects.len()].clone(),
                        domain: domain.clone(),
                    },
                    roles: Vec::new(),
                    expires_at: None,
                    parent_audit_id: None,
                    trust: None,
                    application_credential: None,
                    oauth1: None,
                })
                .await?;
            writeln!(out, "{}", token.id)?;
        }
        out.flush()?;
        eprintln!(
            "seed: {n} subject tokens in {:.1}s -> {}",
            t.elapsed().as_secs_f64(),
            path.display()
        );
        Ok(())
    };
    if let Some(path) = &args.tokens_out {
        mint(args.tokens, path).await?;
    }
    if let Some(path) = &args.cold_tokens_out {
        mint(args.cold_tokens, path).await?;
    }

    if let Some(path) = &args.manifest {
        let m = serde_json::json!({
            "users": users.len(),
            "projects": projects.len(),
            "roles": role_count,
            "endpoints": endpoint_count,
            "revocation_events": args.revocations,
            "admin_password": ADMIN_PASSWORD,
            "user_password": USER_PASSWORD,
            "bench_project_0_id": projects[0].id,
            "bench_user_0_id": users[0].id,
        });
        std::fs::write(path, serde_json::to_string_pretty(&m)?)?;
    }
    eprintln!("seed: done in {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}
