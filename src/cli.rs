//! The `keystone-rs` command line: the server and the operator's tools.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::bootstrap::{bootstrap, BootstrapOptions};
use crate::clock::Clock;
use crate::config::Settings;
use crate::startup::{build_services, Application};
use crate::store::Store;
use crate::token::keys::{KeyRepository, SafetyCheck, SetupOutcome};

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
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create or upgrade the schema.
    Sync,
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
    /// Report the keys and whether the configuration keeps them long enough.
    Check {
        /// Seconds between rotations (else [fernet_tokens] rotation_interval).
        #[arg(long)]
        rotation_interval: Option<u64>,
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
        Command::Fernet { command } => fernet(command, &settings),
        Command::Revoke {
            command: RevokeCommand::Prune,
        } => {
            let (services, _) = build_services(settings, Clock::system()).await?;
            let removed = services.revoke.prune().await?;
            println!("pruned {removed} revocation events");
            Ok(0)
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
            match rotation_interval(flag, settings) {
                Some(interval) => {
                    let check =
                        SafetyCheck::new(repo.max_active_keys(), expiration, window, interval);
                    if !check.is_safe() {
                        if !force {
                            eprintln!("refusing to rotate: {check}");
                            eprintln!(
                                "set [fernet_tokens] max_active_keys = {} (or pass --force)",
                                check.required
                            );
                            return Ok(2);
                        }
                        eprintln!("warning (--force): {check}");
                    }
                }
                None if !force => {
                    eprintln!(
                        "refusing to rotate: the rotation interval is unknown, so keystone-rs cannot check that max_active_keys = {} keeps every key a token accepted by allow_expired still needs; pass --rotation-interval SECONDS or set [fernet_tokens] rotation_interval (or pass --force)",
                        repo.max_active_keys()
                    );
                    return Ok(2);
                }
                None => {}
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
    }
}
