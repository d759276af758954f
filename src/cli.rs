//! The `keystone-rs` command line: the server and the operator's tools.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::bootstrap::{bootstrap, BootstrapOptions};
use crate::clock::Clock;
use crate::config::KeyStoreKind;
use crate::config::Settings;
use crate::credential::KeyRotation;
use crate::startup::database_keys;
use crate::startup::{build_services, Application};
use crate::store::Store;
use crate::token::keys::{
    ClusterReport, KeyEncryptionKey, KeyRepository, RotateResult, RotateRules, SafetyCheck,
    SetupOutcome,
};

#[derive(Parser, Debug)]
#[command(
    name = "keystone-rs",
    version,
    about = "An OpenStack Keystone-compatible identity server"
)]
pub struct Cli {
    /// keystone.conf to read (default: etc/keystone.conf, else /etc/keystone-rs/keystone.conf).
    #[arg(long, global = true)]
    pub config_file: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server.
    Serve {
        /// Listen address, overriding [server] bind.
        #[arg(long)]
        bind: Option<String>,
    },
    /// Database schema management.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Create the admin user, project, roles and identity endpoints (idempotent).
    Bootstrap(BootstrapArgs),
    /// Fernet key repository management.
    Fernet {
        #[command(subcommand)]
        command: FernetCommand,
    },
    /// Revocation event management.
    Revoke {
        #[command(subcommand)]
        command: RevokeCommand,
    },
    /// Credential key repository management ([credential] key_repository).
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Create the credential key repository with a staged and a primary key.
    Setup,
    /// Promote the staged key, refusing while a credential needs a key it would purge.
    Rotate,
    /// Re-encrypt every credential with the primary key.
    Migrate,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create or upgrade the schema.
    Sync,
    /// Import a Python Keystone database (2023.1 or newer), keeping every id and
    /// password hash, in one transaction. Run `db sync` first.
    Import {
        /// Keystone's `[database] connection`, e.g. sqlite:////var/lib/keystone/keystone.db,
        /// postgresql://keystone:secret@db/keystone or mysql+pymysql://keystone:secret@db/keystone.
        #[arg(long = "from")]
        from: String,
        /// Empty the target's identity tables first (otherwise a non-empty target is refused).
        #[arg(long)]
        replace: bool,
        /// Read and check everything, print what would be written, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RevokeCommand {
    /// Delete events that can no longer revoke an acceptable token.
    Prune,
}

#[derive(Subcommand, Debug)]
pub enum FernetCommand {
    /// Create the key repository with a staged and a primary key.
    Setup,
    /// Promote the staged key and purge the oldest, refusing unsafe settings.
    Rotate {
        /// Seconds between rotations (else [fernet_tokens] rotation_interval).
        #[arg(long)]
        rotation_interval: Option<u64>,
        /// Rotate even if max_active_keys would drop keys still needed by allow_expired.
        #[arg(long)]
        force: bool,
    },
    /// Report the keys and whether the configuration keeps them long enough (with
    /// key_store = database: the cluster view, replicas and the next rotation).
    Check {
        /// Seconds between rotations (else [fernet_tokens] rotation_interval).
        #[arg(long)]
        rotation_interval: Option<u64>,
    },
    /// Write the database's keys into a Keystone key repository directory.
    Export {
        /// An empty or missing directory (created mode 0700).
        #[arg(long)]
        to: PathBuf,
    },
    /// Store a Keystone key repository's keys in the database.
    Import {
        #[arg(long)]
        from: PathBuf,
        /// Replace keys already in the database (every token they made stops validating).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    #[arg(long, env = "OS_BOOTSTRAP_USERNAME", default_value = "admin")]
    pub bootstrap_username: String,
    #[arg(long, env = "OS_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub bootstrap_password: String,
    #[arg(long, env = "OS_BOOTSTRAP_PROJECT_NAME", default_value = "admin")]
    pub bootstrap_project_name: String,
    #[arg(long, env = "OS_BOOTSTRAP_ROLE_NAME", default_value = "admin")]
    pub bootstrap_role_name: String,
    #[arg(long, env = "OS_BOOTSTRAP_SERVICE_NAME", default_value = "keystone")]
    pub bootstrap_service_name: String,
    #[arg(long, env = "OS_BOOTSTRAP_REGION_ID")]
    pub bootstrap_region_id: Option<String>,
    #[arg(long, env = "OS_BOOTSTRAP_ADMIN_URL")]
    pub bootstrap_admin_url: Option<String>,
    #[arg(long, env = "OS_BOOTSTRAP_PUBLIC_URL")]
    pub bootstrap_public_url: Option<String>,
    #[arg(long, env = "OS_BOOTSTRAP_INTERNAL_URL")]
    pub bootstrap_internal_url: Option<String>,
}

fn default_config_file() -> Option<PathBuf> {
    ["etc/keystone.conf", "/etc/keystone-rs/keystone.conf"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn load_settings(path: Option<&Path>) -> anyhow::Result<Settings> {
    let path = path.map(Path::to_path_buf).or_else(default_config_file);
    if let Some(p) = &path {
        if !p.exists() {
            bail!("configuration file {} does not exist", p.display());
        }
    }
    let settings = Settings::load(path.as_deref())?;
    Ok(settings)
}

fn rotation_interval(flag: Option<u64>, settings: &Settings) -> Option<u64> {
    flag.or(settings.fernet_tokens.rotation_interval)
}

/// Runs the command; the returned code is the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    crate::telemetry::init("info", cli.log_json);
    let mut settings = load_settings(cli.config_file.as_deref())?;
    // Every command reports unknown options: a typo must not pass silently.
    for warning in std::mem::take(&mut settings.warnings) {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            let app = Application::build(settings, Clock::system()).await?;
            tracing::info!(port = app.port(), "keystone-rs listening");
            app.run_until_stopped().await?;
            Ok(0)
        }
        Command::Db {
            command: DbCommand::Sync,
        } => {
            let store = Store::connect(
                &settings.database.connection,
                2,
                std::time::Duration::from_secs(settings.database.pool_timeout),
            )
            .await?;
            store.migrate().await.context("applying migrations")?;
            println!(
                "database schema is up to date ({})",
                settings.database.connection.redacted()
            );
            Ok(0)
        }
        Command::Db {
            command:
                DbCommand::Import {
                    from,
                    replace,
                    dry_run,
                },
        } => {
            let from = crate::config::SourceUrl::parse(&from)
                .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            let store = Store::connect(
                &settings.database.connection,
                2,
                std::time::Duration::from_secs(settings.database.pool_timeout),
            )
            .await?;
            store.migrate().await.context("applying migrations")?;
            let report =
                crate::import::import(&store, &from, replace, dry_run, &ImportBar::new()).await?;
            print!("{}", report.table());
            if report.written {
                println!(
                    "imported into {} (Keystone schema {})",
                    settings.database.connection.redacted(),
                    report.revisions.join(", ")
                );
            } else {
                println!("dry run: nothing was written");
            }
            Ok(0)
        }
        Command::Bootstrap(args) => {
            let (services, _) = build_services(settings, Clock::system()).await?;
            let report = bootstrap(
                &services,
                &BootstrapOptions {
                    username: args.bootstrap_username,
                    password: args.bootstrap_password,
                    project_name: args.bootstrap_project_name,
                    role_name: args.bootstrap_role_name,
                    service_name: args.bootstrap_service_name,
                    region_id: args.bootstrap_region_id,
                    admin_url: args.bootstrap_admin_url,
                    public_url: args.bootstrap_public_url,
                    internal_url: args.bootstrap_internal_url,
                },
            )
            .await?;
            for c in &report.created {
                println!("created {c}");
            }
            for u in &report.updated {
                println!("updated {u}");
            }
            if report.created.is_empty() && report.updated.is_empty() {
                println!("nothing to do: already bootstrapped");
            }
            Ok(0)
        }
        Command::Fernet { command } => match settings.fernet_tokens.key_store {
            _ if matches!(
                command,
                FernetCommand::Export { .. } | FernetCommand::Import { .. }
            ) =>
            {
                fernet_database(command, &settings).await
            }
            KeyStoreKind::File => fernet(command, &settings),
            KeyStoreKind::Database => fernet_database(command, &settings).await,
        },
        Command::Revoke {
            command: RevokeCommand::Prune,
        } => {
            let (services, _) = build_services(settings, Clock::system()).await?;
            let removed = services.revoke.prune().await?;
            println!("pruned {removed} revocation events");
            Ok(0)
        }
        Command::Credential { command } => credential(command, settings).await,
    }
}

/// `credential setup|rotate|migrate` (Keystone's `credential_setup`, `credential_rotate`,
/// `credential_migrate`).
async fn credential(command: CredentialCommand, settings: Settings) -> anyhow::Result<i32> {
    let dir = settings.credential.key_repository.clone();
    let (services, _) = build_services(settings, Clock::system()).await?;
    let credentials = &services.credentials;
    match command {
        CredentialCommand::Setup => {
            match credentials.setup_keys()? {
                SetupOutcome::AlreadyInitialized => {
                    println!(
                        "credential key repository {} already initialized",
                        dir.display()
                    )
                }
                SetupOutcome::Initialized { .. } => println!(
                    "created credential key repository {} with a staged and a primary key",
                    dir.display()
                ),
            }
            Ok(0)
        }
        CredentialCommand::Rotate => match credentials.rotate_keys().await? {
            KeyRotation::Rotated(outcome) => {
                println!(
                    "rotated: key {} is the new primary; removed {:?}; keys now {:?}",
                    outcome.new_primary, outcome.removed, outcome.remaining
                );
                Ok(0)
            }
            KeyRotation::Refused { rows } => {
                eprintln!(
                    "refusing to rotate: {rows} credentials are encrypted with a key this rotation would purge; run `keystone-rs credential migrate` first"
                );
                Ok(2)
            }
        },
        CredentialCommand::Migrate => {
            let report = credentials.migrate().await?;
            println!(
                "re-encrypted {} credentials with the primary key ({} already were; {} changed meanwhile and were left as they are)",
                report.migrated, report.already_primary, report.skipped
            );
            Ok(0)
        }
    }
}

/// The rotate/check safety rule shared by both key stores: Some(exit code) to stop.
fn refuse_unsafe_rotation(settings: &Settings, flag: Option<u64>, force: bool) -> Option<i32> {
    let max_active_keys = settings.fernet_tokens.max_active_keys;
    let (expiration, window) = (
        settings.token.expiration,
        settings.token.allow_expired_window,
    );
    match rotation_interval(flag, settings) {
        Some(interval) => {
            let check = SafetyCheck::new(max_active_keys, expiration, window, interval);
            if !check.is_safe() {
                if !force {
                    eprintln!("refusing to rotate: {check}");
                    eprintln!(
                        "set [fernet_tokens] max_active_keys = {} (or pass --force)",
                        check.required
                    );
                    return Some(2);
                }
                eprintln!("warning (--force): {check}");
            }
            None
        }
        None if !force => {
            eprintln!(
                "refusing to rotate: the rotation interval is unknown, so keystone-rs cannot check that max_active_keys = {max_active_keys} keeps every key a token accepted by allow_expired still needs; pass --rotation-interval SECONDS or set [fernet_tokens] rotation_interval (or pass --force)"
            );
            Some(2)
        }
        None => None,
    }
}

/// Who changed the keys, as `fernet check` shows it.
fn cli_actor() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("keystone-rs fernet (on {host})")
}

/// `fernet ...` with the keys in the database (and export/import in either mode).
async fn fernet_database(command: FernetCommand, settings: &Settings) -> anyhow::Result<i32> {
    let f = &settings.fernet_tokens;
    if let FernetCommand::Setup = command {
        if KeyEncryptionKey::create_if_missing(&f.key_encryption_key_file)? {
            println!(
                "created the key-encryption key {} (mode 0600): copy this file to every node, once, by your secret distribution",
                f.key_encryption_key_file.display()
            );
        }
    }
    let store = Store::connect(
        &settings.database.connection,
        2,
        std::time::Duration::from_secs(settings.database.pool_timeout),
    )
    .await?;
    if !store.is_migrated().await? {
        bail!("the database has no schema yet: run `keystone-rs db sync` first");
    }
    let clock = Clock::system();
    let keys = database_keys(settings, &store, &clock)?;
    let who = cli_actor();
    match command {
        FernetCommand::Setup => {
            if keys.setup(&who).await? {
                println!("created the Fernet key set in the database: a staged and a primary key");
            } else {
                println!("the database already holds Fernet keys; nothing to do");
            }
            Ok(0)
        }
        FernetCommand::Rotate {
            rotation_interval: flag,
            force,
        } => {
            if let Some(code) = refuse_unsafe_rotation(settings, flag, force) {
                return Ok(code);
            }
            let rules = RotateRules {
                due_every: None,
                replica_timeout: (!force).then_some(f.replica_timeout),
                force,
            };
            match keys.rotate(&who, &rules).await? {
                RotateResult::Rotated {
                    new_primary,
                    removed,
                    kept,
                    version,
                    ..
                } => {
                    println!(
                        "rotated: key {new_primary} is the new primary; removed {removed:?}; kept {kept:?} beyond max_active_keys (still needed); version {version}"
                    );
                    Ok(0)
                }
                RotateResult::Waiting { replicas } => {
                    eprintln!(
                        "not rotated: these live replicas have not loaded the current keys yet (they do within [revoke] refresh_interval; a replica silent for replica_timeout no longer counts): {}",
                        replicas.join(", ")
                    );
                    Ok(1)
                }
                RotateResult::Lost => {
                    eprintln!("not rotated: the key set changed meanwhile (another rotation); run again if still needed");
                    Ok(1)
                }
                RotateResult::NotDue { .. } => Ok(0),
            }
        }
        FernetCommand::Check {
            rotation_interval: flag,
        } => {
            let Some(interval) = rotation_interval(flag, settings) else {
                eprintln!("the rotation interval is unknown: pass --rotation-interval SECONDS or set [fernet_tokens] rotation_interval");
                return Ok(2);
            };
            let set = keys.open_set().await?;
            let report = ClusterReport {
                next_rotation: f
                    .auto_rotate
                    .then(|| set.state.rotated_at + interval as i64),
                replicas: keys.replicas(86_400).await?,
                now: clock.now_secs(),
                replica_timeout: f.replica_timeout,
                safety: SafetyCheck::new(
                    f.max_active_keys,
                    settings.token.expiration,
                    settings.token.allow_expired_window,
                    interval,
                ),
                set,
            };
            println!("{report}");
            Ok(if report.is_safe() { 0 } else { 1 })
        }
        FernetCommand::Export { to } => {
            let set = keys.open_set().await?;
            if set.keys.is_empty() {
                bail!("the database holds no Fernet keys to export");
            }
            let repo = KeyRepository::new(&to, f.max_active_keys);
            let texts: Vec<(u64, String)> = set
                .keys
                .iter()
                .map(|k| (k.idx, k.text().to_string()))
                .collect();
            repo.write_keys(&texts)?;
            println!(
                "exported {} keys (version {}) to {}",
                texts.len(),
                set.state.version,
                to.display()
            );
            Ok(0)
        }
        FernetCommand::Import { from, replace } => {
            let repo = KeyRepository::new(&from, f.max_active_keys);
            let texts = repo.read_keys()?;
            match keys.import(texts, replace, &who).await? {
                Some(n) => {
                    println!(
                        "imported {n} keys from {} into the database",
                        from.display()
                    );
                    Ok(0)
                }
                None => {
                    eprintln!("the database already holds Fernet keys; pass --replace to replace them (every token they encrypted stops validating)");
                    Ok(2)
                }
            }
        }
    }
}

fn fernet(command: FernetCommand, settings: &Settings) -> anyhow::Result<i32> {
    let repo = KeyRepository::new(
        settings.fernet_tokens.key_repository.clone(),
        settings.fernet_tokens.max_active_keys,
    );
    let expiration = settings.token.expiration;
    let window = settings.token.allow_expired_window;
    match command {
        FernetCommand::Setup => {
            match repo.setup()? {
                SetupOutcome::AlreadyInitialized => {
                    println!(
                        "key repository {} already initialized",
                        repo.dir().display()
                    )
                }
                SetupOutcome::Initialized { .. } => println!(
                    "created key repository {} with a staged and a primary key",
                    repo.dir().display()
                ),
            }
            Ok(0)
        }
        FernetCommand::Rotate {
            rotation_interval: flag,
            force,
        } => {
            if let Some(code) = refuse_unsafe_rotation(settings, flag, force) {
                return Ok(code);
            }
            let outcome = repo.rotate()?;
            println!(
                "rotated: key {} is the new primary; removed {:?}; keys now {:?}",
                outcome.new_primary, outcome.removed, outcome.remaining
            );
            Ok(0)
        }
        FernetCommand::Check {
            rotation_interval: flag,
        } => {
            let Some(interval) = rotation_interval(flag, settings) else {
                eprintln!("the rotation interval is unknown: pass --rotation-interval SECONDS or set [fernet_tokens] rotation_interval");
                return Ok(2);
            };
            let report = repo.check_report(expiration, window, interval, SystemTime::now())?;
            println!("{report}");
            Ok(if report.is_safe() { 0 } else { 1 })
        }
        FernetCommand::Export { .. } | FernetCommand::Import { .. } => {
            bail!("fernet export and import always work on the database")
        }
    }
}

/// `db import`'s progress on a terminal (indicatif hides itself when stderr is not one).
struct ImportBar(indicatif::ProgressBar);

impl ImportBar {
    fn new() -> Self {
        ImportBar(indicatif::ProgressBar::new_spinner())
    }
}

impl crate::model::ImportProgress for ImportBar {
    fn reading(&self) {
        self.0.set_message("reading the Keystone database");
        self.0
            .enable_steady_tick(std::time::Duration::from_millis(120));
    }

    fn writing(&self, rows: u64) {
        self.0.set_length(rows);
        self.0.set_position(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} {wide_bar} {pos}/{len} rows ({eta} left)",
        ) {
            self.0.set_style(style);
        }
        self.0.set_message("writing");
    }

    fn wrote_row(&self) {
        self.0.inc(1);
    }

    fn finished(&self) {
        self.0.finish_and_clear();
    }
}
