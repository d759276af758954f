//! keystone.conf: the same sections, option names and defaults as Python Keystone,
//! read from an INI file with `KEYSTONE_<SECTION>__<OPTION>` environment overrides.
//!
//! Values are parsed here, once, into typed settings; a bad value is a startup error
//! naming the option, and unknown options or variables are reported so a typo is
//! never silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Keystone 30.0.0's default `[auth] methods` (the mirror lacks
/// `ec2credential`). The position defines the bit: i-th method = `1 << i`.
pub const KEYSTONE_DEFAULT_METHODS: &[&str] = &[
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
    "ec2credential",
];

/// Environment variables with this prefix override file options.
pub const ENV_PREFIX: &str = "KEYSTONE_";

/// Variables with the prefix that are ours but not options (test harness knobs).
const NON_OPTION_VARIABLES: &[&str] = &[
    "KEYSTONE_TEST_POSTGRES_URL",
    "KEYSTONE_TEST_REQUIRE_POSTGRES",
    "KEYSTONE_TEST_LOG",
    "KEYSTONE_SPEC_DIR",
    "KEYSTONE_RS_BIN",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: config::ConfigError,
    },
    #[error("invalid value {value:?} for [{section}] {option}: {reason}")]
    Invalid {
        section: String,
        option: String,
        value: String,
        reason: String,
    },
}

/// Everything keystone-rs reads from keystone.conf.
#[derive(Clone, Debug)]
pub struct Settings {
    pub default: DefaultSection,
    pub database: DatabaseSection,
    pub token: TokenSection,
    pub fernet_tokens: FernetTokensSection,
    pub identity: IdentitySection,
    pub resource: ResourceSection,
    pub domain_config: DomainConfigSection,
    pub auth: AuthSection,
    pub revoke: RevokeSection,
    pub oslo_policy: OsloPolicySection,
    pub server: ServerSection,
    pub assignment: AssignmentSection,
    pub healthcheck: HealthcheckSection,
    pub metrics: MetricsSection,
    pub credential: CredentialSection,
    pub unified_limit: UnifiedLimitSection,
    pub security_compliance: SecurityComplianceSection,
    pub rate_limit: RateLimitSection,
    pub trust: TrustSection,
    /// `[oauth1]`.
    pub oauth1: crate::oauth1::OAuth1Settings,
    pub application_credential: ApplicationCredentialSection,
    /// Options and variables that were present but are not ours; logged at startup.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct DefaultSection {
    /// Base URL for links, discovery and `WWW-Authenticate`; else the request's own URL.
    pub public_endpoint: Option<String>,
    /// Reveal the detail of security errors (Keystone's `insecure_debug`).
    pub insecure_debug: bool,
    /// Levels of projects below a domain, a top-level project being level 1
    /// (Keystone's `[DEFAULT] max_project_tree_depth`, default 5).
    pub max_project_tree_depth: usize,
    /// Default page size of every paged collection, unless its section sets one.
    pub list_limit: Option<usize>,
    /// The largest page a client may ask for (Keystone's default 1000).
    pub max_db_limit: usize,
}

#[derive(Clone)]
pub struct DatabaseSection {
    pub connection: DatabaseUrl,
    pub max_pool_size: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    pub pool_timeout: u64,
}

impl fmt::Debug for DatabaseSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSection")
            .field("connection", &self.connection.redacted())
            .field("max_pool_size", &self.max_pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct TokenSection {
    pub expiration: u64,
    pub allow_expired_window: u64,
    pub allow_rescope_scoped_token: bool,
    /// Keystone's `[token] caching`: cache validated tokens in-process.
    pub caching: bool,
    /// Keystone's `[token] cache_time` (seconds); entries also drop on any write.
    pub cache_time: u64,
}

#[derive(Clone, Debug)]
pub struct FernetTokensSection {
    pub key_repository: PathBuf,
    pub max_active_keys: usize,
    /// keystone-rs extension: how often the operator rotates, used to check that
    /// `max_active_keys` keeps every key a token accepted by `allow_expired` needs.
    pub rotation_interval: Option<u64>,
    /// keystone-rs extension: where the keys live.
    pub key_store: KeyStoreKind,
    /// The key that encrypts the keys kept in the database (`key_store = database`).
    pub key_encryption_key_file: PathBuf,
    /// Rotate every `rotation_interval` by ourselves (`key_store = database`).
    pub auto_rotate: bool,
    /// Seconds a replica may stay silent and still count as live: a staged key is
    /// promoted only once every live replica has loaded it.
    pub replica_timeout: u64,
}

/// `[fernet_tokens] key_store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStoreKind {
    /// Keystone's key repository directory (the default).
    File,
    /// The shared database, encrypted under the key-encryption key.
    Database,
}

/// `[healthcheck]`: oslo.middleware's healthcheck options that apply here.
#[derive(Clone, Debug)]
pub struct HealthcheckSection {
    /// While this file exists, `/healthcheck` answers 503 `DISABLED BY FILE` (drain a
    /// node from its load balancer).
    pub disable_by_file_path: Option<PathBuf>,
}

/// `[metrics]` (keystone-rs): the Prometheus endpoint.
#[derive(Clone, Debug)]
pub struct MetricsSection {
    pub enabled: bool,
    /// Serve `/metrics` (unauthenticated) on this address too; empty: only on the
    /// API listener, to admin tokens and localhost.
    pub bind: Option<String>,
}

#[derive(Clone, Debug)]
pub struct IdentitySection {
    pub default_domain_id: String,
    pub password_hash_algorithm: String,
    pub max_password_length: usize,
    /// Default page size of `/v3/users` and `/v3/groups` (else `[DEFAULT] list_limit`).
    pub list_limit: Option<usize>,
}

/// `[domain_config]`: the domain configuration API.
#[derive(Debug, Clone)]
pub struct DomainConfigSection {
    /// keystone-rs: store a domain's `identity.driver` other than `sql` (which it
    /// never loads: every domain is served from SQL) instead of refusing it with 403.
    pub allow_unsupported_drivers: bool,
}

#[derive(Debug, Clone)]
pub struct ResourceSection {
    /// Default page size of `/v3/projects` (else `[DEFAULT] list_limit`).
    pub list_limit: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct AuthSection {
    /// The order defines the method bitmask inside tokens: keep it identical on every node.
    pub methods: Vec<String>,
}

/// `[security_compliance]`: Keystone's account lockout, password expiry, history,
/// complexity and inactivity rules, with its names and defaults (None = off).
#[derive(Clone, Debug)]
pub struct SecurityComplianceSection {
    pub disable_user_account_days_inactive: Option<i64>,
    pub lockout_failure_attempts: Option<i64>,
    /// Seconds a locked account stays locked.
    pub lockout_duration: i64,
    pub password_expires_days: Option<i64>,
    pub unique_last_password_count: i64,
    /// Days a self-service password must be kept before it can be changed again.
    pub minimum_password_age: i64,
    /// Matched from the start of the password, as Python's `re.match`.
    pub password_regex: Option<PasswordRegex>,
    pub password_regex_description: Option<String>,
    pub change_password_upon_first_use: bool,
}

impl Default for SecurityComplianceSection {
    /// Keystone's defaults: everything off, a 30-minute lockout once enabled.
    fn default() -> Self {
        SecurityComplianceSection {
            disable_user_account_days_inactive: None,
            lockout_failure_attempts: None,
            lockout_duration: 1800,
            password_expires_days: None,
            unique_last_password_count: 0,
            minimum_password_age: 0,
            password_regex: None,
            password_regex_description: None,
            change_password_upon_first_use: false,
        }
    }
}

/// `[security_compliance] password_regex`, compiled once (Python syntax, lookarounds
/// included, through fancy-regex).
#[derive(Clone)]
pub struct PasswordRegex {
    pub source: String,
    pub compiled: fancy_regex::Regex,
}

impl PasswordRegex {
    /// Compiles `source` to match from the start of the password, as Python's `re.match`.
    pub fn new(source: &str) -> Result<Self, String> {
        let compiled =
            fancy_regex::Regex::new(&format!("\\A(?:{source})")).map_err(|e| e.to_string())?;
        Ok(PasswordRegex {
            source: source.to_string(),
            compiled,
        })
    }
}

impl fmt::Debug for PasswordRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// `[rate_limit]` (keystone-rs): token buckets in front of `POST /v3/auth/tokens`,
/// checked before any password is hashed. Per process: N replicas admit N times this.
#[derive(Clone, Debug)]
pub struct RateLimitSection {
    pub enabled: bool,
    /// Password attempts per minute from one client address (the bucket refills at
    /// this rate), with `per_address_burst` allowed at once.
    pub per_address_per_minute: u32,
    pub per_address_burst: u32,
    /// Password attempts per minute naming one user (name and domain, or id).
    pub per_user_per_minute: u32,
    pub per_user_burst: u32,
}

/// `[trust]`: OS-TRUST delegation (docs/delegation.md).
#[derive(Clone, Debug)]
pub struct TrustSection {
    /// keystone-rs: false turns `/v3/OS-TRUST` and trust-scoped tokens off (403).
    pub enabled: bool,
    /// Whether a trust may be created with `allow_redelegation: true` (Keystone reads
    /// this option but never enforces it; keystone-rs does: docs/compatibility.md).
    pub allow_redelegation: bool,
    /// The longest chain of redelegated trusts (Keystone's default 3).
    pub max_redelegation_count: i64,
}

/// `[credential]`: the credential store and its encryption keys.
#[derive(Clone, Debug)]
pub struct CredentialSection {
    /// The Fernet key repository that encrypts credential blobs (not the token keys).
    pub key_repository: PathBuf,
    /// keystone-rs extension: keys kept by `credential rotate` (Keystone fixes 3).
    pub max_active_keys: usize,
    /// Minutes a signed EC2/S3 request stays valid after its timestamp.
    pub auth_ttl: u64,
    /// Credentials a user may own; -1: unlimited.
    pub user_limit: i64,
}

/// `[application_credential]`.
#[derive(Clone, Debug)]
pub struct ApplicationCredentialSection {
    /// Application credentials a user may own; -1: unlimited.
    pub user_limit: i64,
}

/// `[unified_limit]`: how limits are validated against the project hierarchy.
#[derive(Clone, Debug)]
pub struct UnifiedLimitSection {
    pub enforcement_model: EnforcementModel,
}

/// `[unified_limit] enforcement_model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforcementModel {
    /// Limits are independent of the hierarchy (Keystone's default).
    Flat,
    /// Projects nest at most two deep; a project's limit never exceeds its domain's.
    StrictTwoLevel,
}

#[derive(Clone, Debug)]
pub struct RevokeSection {
    pub expiration_buffer: u64,
    /// keystone-rs extension: seconds between incremental reloads of the event index.
    pub refresh_interval: u64,
    /// keystone-rs extension: past this many seconds without a successful reload,
    /// validation answers 503 instead of trusting a stale revocation list.
    pub max_staleness: u64,
    /// keystone-rs extension: seconds between prunes of expired events.
    pub prune_interval: u64,
}

#[derive(Clone, Debug)]
pub struct AssignmentSection {
    /// Role names that no rule may imply (Keystone's `prohibited_implied_role`,
    /// default `admin`): a root role must be granted, never inferred.
    pub prohibited_implied_role: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct OsloPolicySection {
    pub policy_file: Option<PathBuf>,
}

/// keystone-rs extension: Keystone runs under a WSGI server, we are the server.
#[derive(Clone, Debug)]
pub struct ServerSection {
    pub bind: String,
    pub workers: usize,
    /// Concurrent password hashes; each argon2id hash holds ~19 MiB.
    pub max_concurrent_hashes: usize,
    /// Nice value of the threads that hash passwords (0: normal priority).
    pub hash_nice: i32,
    /// Keystone's `[oslo_middleware] max_request_body_size` default.
    pub max_request_body_size: usize,
    /// Seconds a request body may take to arrive (a stalled body is a 408).
    pub body_timeout: u64,
    /// Open connections the server accepts at once, all workers together; 0 derives it
    /// from the process's open-file limit.
    pub max_connections: usize,
    /// Peers whose `Forwarded` / `X-Forwarded-*` headers are believed (a load
    /// balancer). Empty: nobody's, as Keystone by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A `[database] connection` value, normalised from SQLAlchemy's forms.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

impl DatabaseUrl {
    /// Accepts SQLAlchemy URLs as found in a keystone.conf (`sqlite:///rel.db`,
    /// `sqlite:////abs.db`, `postgresql+psycopg2://...`) and sqlx ones.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (scheme, rest) = raw
            .split_once(':')
            .ok_or_else(|| "expected a URL such as sqlite:///keystone.db".to_string())?;
        let base_scheme = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        match base_scheme.as_str() {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                // SQLAlchemy: sqlite:///rel (one slash left) is relative, sqlite:////abs absolute.
                let path = path.strip_prefix('/').unwrap_or(path);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path == ":memory:" {
                    return Err("an in-memory SQLite database cannot be shared by the server's connections; name a file".into());
                }
                Ok(DatabaseUrl::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            "postgres" | "postgresql" => Ok(DatabaseUrl::Postgres {
                url: format!("postgres:{rest}"),
            }),
            "mysql" | "mariadb" => Err(
                "MySQL/MariaDB is not supported by keystone-rs; use sqlite:// or postgresql://"
                    .into(),
            ),
            other => Err(format!("unsupported database scheme {other:?}")),
        }
    }

    /// The URL with any password replaced, safe to log.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite { path } => format!("sqlite:///{}", path.display()),
            DatabaseUrl::Postgres { url } => match url::Url::parse(url) {
                Ok(mut u) if u.password().is_some() => {
                    let _ = u.set_password(Some("***"));
                    u.to_string()
                }
                Ok(u) => u.to_string(),
                Err(_) => "postgres://<unparsable>".into(),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Where `db import --from` reads a Python Keystone database: anything `[database]
/// connection` accepts, plus MySQL/MariaDB (read only; keystone-rs never stores there).
#[derive(Clone, PartialEq, Eq)]
pub enum SourceUrl {
    Storage(DatabaseUrl),
    /// An sqlx `mysql://` URL, translated from SQLAlchemy's `mysql+pymysql://` form.
    Mysql {
        url: String,
    },
}

impl SourceUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let scheme = raw.split(':').next().unwrap_or_default();
        let base = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        if base != "mysql" && base != "mariadb" {
            return DatabaseUrl::parse(raw).map(SourceUrl::Storage);
        }
        let rest = &raw[scheme.len()..];
        let mut url = url::Url::parse(&format!("mysql{rest}"))
            .map_err(|e| format!("unreadable MySQL URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(
                "a MySQL URL needs a host, e.g. mysql+pymysql://keystone:PASSWORD@db/keystone"
                    .into(),
            );
        }
        // SQLAlchemy/PyMySQL query options sqlx does not know (charset=utf8, ...) are
        // dropped; a unix socket keeps working under sqlx's name for it.
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| match k.as_ref() {
                "unix_socket" | "socket" => Some(("socket".to_string(), v.into_owned())),
                "ssl-mode" | "ssl-ca" => Some((k.into_owned(), v.into_owned())),
                _ => None,
            })
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        Ok(SourceUrl::Mysql {
            url: url.to_string(),
        })
    }

    /// The URL with any password replaced, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            SourceUrl::Storage(u) => u.redacted(),
            SourceUrl::Mysql { url } => match url::Url::parse(url) {
                Ok(mut u) if u.password().is_some() => {
                    let _ = u.set_password(Some("***"));
                    u.to_string()
                }
                Ok(u) => u.to_string(),
                Err(_) => "mysql://<unparsable>".into(),
            },
        }
    }
}

impl fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The raw options, by lower-cased section then option.
type RawOptions = BTreeMap<String, BTreeMap<String, String>>;

/// Options we know, by section. Anything else found in a file or the environment is warned about.
const KNOWN_OPTIONS: &[(&str, &[&str])] = &[
    (
        "default",
        &[
            "public_endpoint",
            "insecure_debug",
            "debug",
            "max_project_tree_depth",
            "list_limit",
            "max_db_limit",
        ],
    ),
    ("database", &["connection", "max_pool_size", "pool_timeout"]),
    (
        "token",
        &[
            "expiration",
            "allow_expired_window",
            "allow_rescope_scoped_token",
            "provider",
            "caching",
            "cache_time",
        ],
    ),
    (
        "fernet_tokens",
        &[
            "key_repository",
            "max_active_keys",
            "rotation_interval",
            "key_store",
            "key_encryption_key_file",
            "auto_rotate",
            "replica_timeout",
        ],
    ),
    ("healthcheck", &["disable_by_file_path"]),
    ("metrics", &["enabled", "bind"]),
    (
        "credential",
        &[
            "driver",
            "provider",
            "key_repository",
            "max_active_keys",
            "caching",
            "cache_time",
            "auth_ttl",
            "user_limit",
        ],
    ),
    (
        "unified_limit",
        &[
            "driver",
            "caching",
            "cache_time",
            "list_limit",
            "enforcement_model",
        ],
    ),
    (
        "identity",
        &[
            "default_domain_id",
            "password_hash_algorithm",
            "max_password_length",
            "list_limit",
        ],
    ),
    ("resource", &["list_limit"]),
    ("domain_config", &["allow_unsupported_drivers"]),
    ("auth", &["methods"]),
    (
        "security_compliance",
        &[
            "disable_user_account_days_inactive",
            "lockout_failure_attempts",
            "lockout_duration",
            "password_expires_days",
            "unique_last_password_count",
            "minimum_password_age",
            "password_regex",
            "password_regex_description",
            "change_password_upon_first_use",
        ],
    ),
    (
        "rate_limit",
        &[
            "enabled",
            "per_address_per_minute",
            "per_address_burst",
            "per_user_per_minute",
            "per_user_burst",
        ],
    ),
    (
        "revoke",
        &[
            "expiration_buffer",
            "refresh_interval",
            "max_staleness",
            "prune_interval",
        ],
    ),
    ("oslo_policy", &["policy_file", "enforce_new_defaults"]),
    (
        "trust",
        &[
            "enabled",
            "allow_redelegation",
            "max_redelegation_count",
            "driver",
        ],
    ),
    ("assignment", &["driver", "prohibited_implied_role"]),
    (
        "server",
        &[
            "bind",
            "workers",
            "max_concurrent_hashes",
            "hash_nice",
            "max_request_body_size",
            "body_timeout",
            "max_connections",
            "trusted_proxies",
        ],
    ),
    (
        "application_credential",
        &["driver", "caching", "cache_time", "user_limit"],
    ),
    (
        "oauth1",
        &["driver", "request_token_duration", "access_token_duration"],
    ),
];

/// Every (section, option) keystone-rs reads; `etc/keystone.conf.sample` documents each.
pub fn known_options() -> &'static [(&'static str, &'static [&'static str])] {
    KNOWN_OPTIONS
}

impl Settings {
    /// The settings of an empty keystone.conf (Keystone's defaults, ours where Keystone has none).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_raw(RawOptions::new(), Vec::new())
    }

    /// Reads `path` (if given and present) and overlays `KEYSTONE_<SECTION>__<OPTION>` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &vars)
    }

    /// As `load`, with the environment passed in (tests must not mutate the process environment).
    pub fn load_with_env(
        path: Option<&Path>,
        vars: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut raw = RawOptions::new();
        let mut warnings = Vec::new();
        if let Some(path) = path {
            let built = config::Config::builder()
                .add_source(config::File::from(path).format(config::FileFormat::Ini))
                .build()
                .map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
            let table = built
                .try_deserialize::<std::collections::HashMap<String, config::Value>>()
                .map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
            for (section, value) in table {
                match value.clone().into_table() {
                    Ok(options) => {
                        let entry = raw.entry(section.to_ascii_lowercase()).or_default();
                        for (option, v) in options {
                            let text = v.into_string().unwrap_or_default();
                            entry.insert(option.to_ascii_lowercase(), text);
                        }
                    }
                    Err(_) => warnings.push(format!(
                        "option {section:?} in {} is outside any [section]; ignored",
                        path.display()
                    )),
                }
            }
        }
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NON_OPTION_VARIABLES.contains(&name.as_str()) {
                continue;
            }
            match rest.split_once("__") {
                Some((section, option)) if !section.is_empty() && !option.is_empty() => {
                    raw.entry(section.to_ascii_lowercase())
                        .or_default()
                        .insert(option.to_ascii_lowercase(), value.clone());
                }
                _ => warnings.push(format!(
                    "environment variable {name} is not of the form {ENV_PREFIX}<SECTION>__<OPTION>; ignored"
                )),
            }
        }
        for (section, options) in &raw {
            let known = KNOWN_OPTIONS
                .iter()
                .find(|(s, _)| s == section)
                .map(|(_, o)| *o);
            for option in options.keys() {
                if !known.is_some_and(|k| k.contains(&option.as_str())) {
                    warnings.push(format!(
                        "unknown option [{section}] {option} is ignored by keystone-rs"
                    ));
                }
            }
        }
        Self::from_raw(raw, warnings)
    }

    fn from_raw(raw: RawOptions, mut warnings: Vec<String>) -> Result<Self, ConfigError> {
        let o = Options { raw: &raw };
        if !o.parse_bool("oslo_policy", "enforce_new_defaults", true)? {
            warnings.push(
                "[oslo_policy] enforce_new_defaults = false is not supported: keystone-rs always enforces Keystone's current defaults (override rules with a policy file)".into(),
            );
        }
        let methods: Vec<String> = match o.text("auth", "methods") {
            Some(list) => list
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect(),
            None => KEYSTONE_DEFAULT_METHODS
                .iter()
                .map(|m| m.to_string())
                .collect(),
        };
        if methods.is_empty() {
            return Err(o.invalid("auth", "methods", "", "at least one method is required"));
        }
        if methods.len() > 63 {
            return Err(o.invalid("auth", "methods", "", "at most 63 methods fit the bitmask"));
        }
        let algorithm = o
            .text("identity", "password_hash_algorithm")
            .unwrap_or("argon2id")
            .to_string();
        if algorithm != "argon2id" {
            return Err(o.invalid(
                "identity",
                "password_hash_algorithm",
                &algorithm,
                "keystone-rs hashes passwords with argon2id only",
            ));
        }
        let hash_nice: i32 = o.parse("server", "hash_nice", 10)?;
        if !(0..=19).contains(&hash_nice) {
            return Err(o.invalid(
                "server",
                "hash_nice",
                &hash_nice.to_string(),
                "a nice value from 0 (normal priority) to 19 (lowest)",
            ));
        }
        let provider = o.text("token", "provider").unwrap_or("fernet");
        if provider != "fernet" {
            return Err(o.invalid(
                "token",
                "provider",
                provider,
                "keystone-rs issues fernet tokens only",
            ));
        }
        let connection_raw = o
            .text("database", "connection")
            .unwrap_or("sqlite:///keystone.db");
        let connection = DatabaseUrl::parse(connection_raw)
            .map_err(|reason| o.invalid("database", "connection", "<redacted>", &reason))?;
        let trusted_proxies = o
            .text("server", "trusted_proxies")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|e| o.invalid("server", "trusted_proxies", p, &e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_active_keys: usize = o.parse("fernet_tokens", "max_active_keys", 3)?;
        if max_active_keys < 1 {
            return Err(o.invalid("fernet_tokens", "max_active_keys", "0", "the minimum is 1"));
        }
        let key_store = match o.text("fernet_tokens", "key_store").unwrap_or("file") {
            "file" => KeyStoreKind::File,
            "database" => KeyStoreKind::Database,
            other => {
                return Err(o.invalid(
                    "fernet_tokens",
                    "key_store",
                    other,
                    "expected file or database",
                ))
            }
        };
        let auto_rotate = o.parse_bool("fernet_tokens", "auto_rotate", false)?;
        if auto_rotate && key_store != KeyStoreKind::Database {
            return Err(o.invalid(
                "fernet_tokens",
                "auto_rotate",
                "true",
                "automatic rotation needs key_store = database (with a file repository, rotate with `keystone-rs fernet rotate` on one node and distribute the keys)",
            ));
        }
        let replica_timeout: u64 = o.parse("fernet_tokens", "replica_timeout", 60)?;
        if replica_timeout < 2 {
            return Err(o.invalid(
                "fernet_tokens",
                "replica_timeout",
                &replica_timeout.to_string(),
                "the minimum is 2 seconds",
            ));
        }
        let credential = credential_section(&o)?;
        let security_compliance = security_compliance_section(&o)?;
        let rate_limit = rate_limit_section(&o)?;
        let public_endpoint = o
            .text("default", "public_endpoint")
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/').to_string());
        if let Some(endpoint) = &public_endpoint {
            url::Url::parse(endpoint)
                .map_err(|e| o.invalid("DEFAULT", "public_endpoint", endpoint, &e.to_string()))?;
        }
        Ok(Settings {
            default: DefaultSection {
                public_endpoint,
                insecure_debug: o.parse_bool("default", "insecure_debug", false)?,
                max_project_tree_depth: o.parse("default", "max_project_tree_depth", 5)?,
                list_limit: o.parse_opt("default", "list_limit")?,
                max_db_limit: o.parse("default", "max_db_limit", 1000)?,
            },
            database: DatabaseSection {
                connection,
                max_pool_size: o.parse("database", "max_pool_size", 8)?,
                pool_timeout: o.parse("database", "pool_timeout", 5)?,
            },
            token: TokenSection {
                expiration: o.parse("token", "expiration", 3600)?,
                allow_expired_window: o.parse("token", "allow_expired_window", 172_800)?,
                allow_rescope_scoped_token: o.parse_bool(
                    "token",
                    "allow_rescope_scoped_token",
                    true,
                )?,
                caching: o.parse_bool("token", "caching", true)?,
                cache_time: o.parse("token", "cache_time", 600)?,
            },
            fernet_tokens: FernetTokensSection {
                key_repository: PathBuf::from(
                    o.text("fernet_tokens", "key_repository")
                        .unwrap_or("/etc/keystone/fernet-keys/"),
                ),
                max_active_keys,
                rotation_interval: o.parse_opt("fernet_tokens", "rotation_interval")?,
                key_store,
                key_encryption_key_file: PathBuf::from(
                    o.text("fernet_tokens", "key_encryption_key_file")
                        .unwrap_or("/etc/keystone/fernet-kek"),
                ),
                auto_rotate,
                replica_timeout,
            },
            identity: IdentitySection {
                default_domain_id: o
                    .text("identity", "default_domain_id")
                    .unwrap_or("default")
                    .to_string(),
                password_hash_algorithm: algorithm,
                max_password_length: o.parse("identity", "max_password_length", 4096)?,
                list_limit: o.parse_opt("identity", "list_limit")?,
            },
            resource: ResourceSection {
                list_limit: o.parse_opt("resource", "list_limit")?,
            },
            domain_config: DomainConfigSection {
                allow_unsupported_drivers: o.parse_bool(
                    "domain_config",
                    "allow_unsupported_drivers",
                    false,
                )?,
            },
            auth: AuthSection { methods },
            revoke: RevokeSection {
                expiration_buffer: o.parse("revoke", "expiration_buffer", 1800)?,
                refresh_interval: o.parse("revoke", "refresh_interval", 1)?,
                max_staleness: o.parse("revoke", "max_staleness", 30)?,
                prune_interval: o.parse("revoke", "prune_interval", 600)?,
            },
            oslo_policy: OsloPolicySection {
                policy_file: o
                    .text("oslo_policy", "policy_file")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
            },
            server: ServerSection {
                bind: o
                    .text("server", "bind")
                    .unwrap_or("127.0.0.1:5000")
                    .to_string(),
                workers: o.parse("server", "workers", 0)?,
                // Every core: hashing threads run niced (hash_nice), so the kernel
                // hands a core back to request handling as soon as it needs one.
                max_concurrent_hashes: o.parse(
                    "server",
                    "max_concurrent_hashes",
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                )?,
                hash_nice,
                max_request_body_size: o.parse("server", "max_request_body_size", 114_688)?,
                body_timeout: o.parse("server", "body_timeout", 30)?,
                max_connections: o.parse("server", "max_connections", 0)?,
                trusted_proxies,
            },
            assignment: AssignmentSection {
                // oslo.config ListOpt: comma-separated, blanks dropped.
                prohibited_implied_role: o
                    .text("assignment", "prohibited_implied_role")
                    .unwrap_or("admin")
                    .split(',')
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect(),
            },
            healthcheck: HealthcheckSection {
                disable_by_file_path: o
                    .text("healthcheck", "disable_by_file_path")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
            },
            metrics: MetricsSection {
                enabled: o.parse_bool("metrics", "enabled", true)?,
                bind: o
                    .text("metrics", "bind")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            },
            credential,
            unified_limit: unified_limit_section(&o)?,
            security_compliance,
            rate_limit,
            trust: trust_section(&o)?,
            oauth1: oauth1_section(&o)?,
            application_credential: ApplicationCredentialSection {
                user_limit: o.parse("application_credential", "user_limit", -1)?,
            },
            warnings,
        })
    }
}

fn unified_limit_section(o: &Options<'_>) -> Result<UnifiedLimitSection, ConfigError> {
    let driver = o.text("unified_limit", "driver").unwrap_or("sql");
    if driver != "sql" {
        return Err(o.invalid(
            "unified_limit",
            "driver",
            driver,
            "keystone-rs supports sql only",
        ));
    }
    let enforcement_model = match o
        .text("unified_limit", "enforcement_model")
        .unwrap_or("flat")
    {
        "flat" => EnforcementModel::Flat,
        "strict_two_level" => EnforcementModel::StrictTwoLevel,
        other => {
            return Err(o.invalid(
                "unified_limit",
                "enforcement_model",
                other,
                "expected flat or strict_two_level",
            ))
        }
    };
    Ok(UnifiedLimitSection { enforcement_model })
}

/// An integer option with oslo.config's `min` (unset stays unset).
fn at_least(o: &Options<'_>, option: &str, min: i64) -> Result<Option<i64>, ConfigError> {
    let v: Option<i64> = o.parse_opt("security_compliance", option)?;
    match v {
        Some(n) if n < min => Err(o.invalid(
            "security_compliance",
            option,
            &n.to_string(),
            &format!("the minimum is {min}"),
        )),
        other => Ok(other),
    }
}

fn security_compliance_section(o: &Options<'_>) -> Result<SecurityComplianceSection, ConfigError> {
    let password_regex = match o
        .text("security_compliance", "password_regex")
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(source) => Some(
            PasswordRegex::new(source)
                .map_err(|e| o.invalid("security_compliance", "password_regex", source, &e))?,
        ),
    };
    Ok(SecurityComplianceSection {
        disable_user_account_days_inactive: at_least(o, "disable_user_account_days_inactive", 1)?,
        lockout_failure_attempts: at_least(o, "lockout_failure_attempts", 1)?,
        lockout_duration: at_least(o, "lockout_duration", 1)?.unwrap_or(1800),
        password_expires_days: at_least(o, "password_expires_days", 1)?,
        unique_last_password_count: at_least(o, "unique_last_password_count", 0)?.unwrap_or(0),
        minimum_password_age: at_least(o, "minimum_password_age", 0)?.unwrap_or(0),
        password_regex,
        password_regex_description: o
            .text("security_compliance", "password_regex_description")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        change_password_upon_first_use: o.parse_bool(
            "security_compliance",
            "change_password_upon_first_use",
            false,
        )?,
    })
}

fn oauth1_section(o: &Options<'_>) -> Result<crate::oauth1::OAuth1Settings, ConfigError> {
    let driver = o.text("oauth1", "driver").unwrap_or("sql");
    if driver != "sql" {
        return Err(o.invalid("oauth1", "driver", driver, "keystone-rs supports sql only"));
    }
    Ok(crate::oauth1::OAuth1Settings {
        request_token_duration: o.parse("oauth1", "request_token_duration", 28800)?,
        access_token_duration: o.parse("oauth1", "access_token_duration", 86400)?,
    })
}

fn trust_section(o: &Options<'_>) -> Result<TrustSection, ConfigError> {
    let driver = o.text("trust", "driver").unwrap_or("sql");
    if driver != "sql" {
        return Err(o.invalid("trust", "driver", driver, "keystone-rs supports sql only"));
    }
    let max: i64 = o.parse("trust", "max_redelegation_count", 3)?;
    if max < 0 {
        return Err(o.invalid(
            "trust",
            "max_redelegation_count",
            &max.to_string(),
            "the minimum is 0",
        ));
    }
    Ok(TrustSection {
        enabled: o.parse_bool("trust", "enabled", true)?,
        allow_redelegation: o.parse_bool("trust", "allow_redelegation", false)?,
        max_redelegation_count: max,
    })
}

fn rate_limit_section(o: &Options<'_>) -> Result<RateLimitSection, ConfigError> {
    let positive = |option: &str, default: u32| -> Result<u32, ConfigError> {
        let v: u32 = o.parse("rate_limit", option, default)?;
        if v == 0 {
            return Err(o.invalid(
                "rate_limit",
                option,
                "0",
                "the minimum is 1 (set enabled = false to turn limiting off)",
            ));
        }
        Ok(v)
    };
    Ok(RateLimitSection {
        enabled: o.parse_bool("rate_limit", "enabled", true)?,
        per_address_per_minute: positive("per_address_per_minute", 1200)?,
        per_address_burst: positive("per_address_burst", 600)?,
        per_user_per_minute: positive("per_user_per_minute", 600)?,
        per_user_burst: positive("per_user_burst", 300)?,
    })
}

fn credential_section(o: &Options<'_>) -> Result<CredentialSection, ConfigError> {
    for (option, only) in [("driver", "sql"), ("provider", "fernet")] {
        let value = o.text("credential", option).unwrap_or(only);
        if value != only {
            return Err(o.invalid(
                "credential",
                option,
                value,
                &format!("keystone-rs supports {only} only"),
            ));
        }
    }
    let max_active_keys: usize = o.parse("credential", "max_active_keys", 3)?;
    if max_active_keys < 1 {
        return Err(o.invalid("credential", "max_active_keys", "0", "the minimum is 1"));
    }
    Ok(CredentialSection {
        key_repository: PathBuf::from(
            o.text("credential", "key_repository")
                .unwrap_or("/etc/keystone/credential-keys/"),
        ),
        max_active_keys,
        auth_ttl: o.parse("credential", "auth_ttl", 15)?,
        user_limit: o.parse("credential", "user_limit", -1)?,
    })
}

struct Options<'a> {
    raw: &'a RawOptions,
}

impl Options<'_> {
    fn text(&self, section: &str, option: &str) -> Option<&str> {
        self.raw
            .get(section)
            .and_then(|s| s.get(option))
            .map(|v| v.trim())
    }

    fn invalid(&self, section: &str, option: &str, value: &str, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            section: if section == "default" {
                "DEFAULT".into()
            } else {
                section.into()
            },
            option: option.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    fn parse<T: FromStr>(&self, section: &str, option: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        Ok(self.parse_opt(section, option)?.unwrap_or(default))
    }

    fn parse_opt<T: FromStr>(&self, section: &str, option: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.text(section, option) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|e| self.invalid(section, option, v, &e.to_string())),
        }
    }

    /// oslo.config's boolean spellings.
    fn parse_bool(&self, section: &str, option: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(section, option) {
            None | Some("") => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(self.invalid(section, option, v, "expected true or false")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_conf(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".conf")
            .tempfile()
            .expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_match_keystone() {
        let s = Settings::defaults().expect("defaults parse");
        assert_eq!(s.token.expiration, 3600);
        assert_eq!(s.token.allow_expired_window, 172_800);
        assert_eq!(s.fernet_tokens.max_active_keys, 3);
        assert_eq!(s.identity.default_domain_id, "default");
        assert_eq!(s.revoke.expiration_buffer, 1800);
        assert_eq!(s.default.max_project_tree_depth, 5);
        assert_eq!(s.auth.methods[0], "external");
        assert_eq!(s.auth.methods.len(), 7);
        assert_eq!(
            s.assignment.prohibited_implied_role,
            vec!["admin".to_string()]
        );
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn hash_nice_defaults_to_10_and_must_be_a_nice_value() {
        assert_eq!(Settings::defaults().expect("defaults").server.hash_nice, 10);
        let env = |v: &str| vec![("KEYSTONE_SERVER__HASH_NICE".to_string(), v.to_string())];
        let s = Settings::load_with_env(None, &env("0")).expect("0 is allowed");
        assert_eq!(s.server.hash_nice, 0);
        for bad in ["20", "-1", "low"] {
            let e = Settings::load_with_env(None, &env(bad))
                .expect_err(bad)
                .to_string();
            assert!(e.contains("hash_nice"), "{e}");
        }
    }

    #[test]
    fn prohibited_implied_roles_are_a_list() {
        let env = vec![(
            "KEYSTONE_ASSIGNMENT__PROHIBITED_IMPLIED_ROLE".into(),
            "root1, root2,".into(),
        )];
        let s = Settings::load_with_env(None, &env).expect("load");
        assert_eq!(s.assignment.prohibited_implied_role, vec!["root1", "root2"]);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn file_and_env_overlay() {
        let f = write_conf(
            "[DEFAULT]\npublic_endpoint = http://ks.example:5000/\n[token]\nexpiration = 600\n[database]\nconnection = postgresql+psycopg2://ks:secret@db/keystone\n",
        );
        let env = vec![
            ("KEYSTONE_TOKEN__ALLOW_EXPIRED_WINDOW".into(), "7200".into()),
            ("PATH".into(), "/bin".into()),
        ];
        let s = Settings::load_with_env(Some(f.path()), &env).expect("load");
        assert_eq!(s.token.expiration, 600);
        assert_eq!(s.token.allow_expired_window, 7200);
        assert_eq!(
            s.default.public_endpoint.as_deref(),
            Some("http://ks.example:5000")
        );
        assert_eq!(
            s.database.connection,
            DatabaseUrl::Postgres {
                url: "postgres://ks:secret@db/keystone".into()
            }
        );
        assert!(!format!("{:?}", s.database).contains("secret"));
    }

    #[test]
    fn project_tree_depth_is_a_default_section_option() {
        // Keystone reads it from [DEFAULT] (keystone/conf/default.py), not [resource].
        let f = write_conf("[DEFAULT]\nmax_project_tree_depth = 3\n");
        let s = Settings::load_with_env(Some(f.path()), &[]).expect("load");
        assert_eq!(s.default.max_project_tree_depth, 3);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn unknown_options_and_variables_are_named() {
        let f = write_conf("[token]\nexpiraton = 10\n[bogus]\nx = 1\n");
        let env = vec![
            ("KEYSTONE_TOKEN__HASH_ALGORITHMS".into(), "md5".into()),
            ("KEYSTONE_TYPO".into(), "1".into()),
        ];
        let s = Settings::load_with_env(Some(f.path()), &env).expect("load");
        let all = s.warnings.join("\n");
        let legacy = write_conf("[oslo_policy]\nenforce_new_defaults = false\n");
        let l = Settings::load_with_env(Some(legacy.path()), &[]).expect("load");
        assert!(l.warnings.join("\n").contains("enforce_new_defaults"));
        assert!(all.contains("[token] expiraton"), "{all}");
        assert!(all.contains("[bogus] x"), "{all}");
        assert!(all.contains("[token] hash_algorithms"), "{all}");
        assert!(all.contains("KEYSTONE_TYPO"), "{all}");
    }

    #[test]
    fn bad_values_name_the_option() {
        let f = write_conf("[token]\nexpiration = soon\n");
        let err = Settings::load_with_env(Some(f.path()), &[]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("[token] expiration"), "{text}");
        assert!(text.contains("soon"), "{text}");

        let env = vec![(
            "KEYSTONE_DATABASE__CONNECTION".into(),
            "mysql+pymysql://x".into(),
        )];
        let err = Settings::load_with_env(None, &env).expect_err("mysql refused");
        assert!(err.to_string().contains("[database] connection"));
    }

    #[test]
    fn sqlalchemy_sqlite_paths() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///data/k.db"),
            Ok(DatabaseUrl::Sqlite {
                path: "data/k.db".into()
            })
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:////var/lib/k.db"),
            Ok(DatabaseUrl::Sqlite {
                path: "/var/lib/k.db".into()
            })
        );
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("nonsense").is_err());
        match SourceUrl::parse("mysql+pymysql://keystone:pw@db.example:3307/keystone?charset=utf8&unix_socket=/run/my.sock") {
            Ok(SourceUrl::Mysql { url }) => {
                assert_eq!(url, "mysql://keystone:pw@db.example:3307/keystone?socket=%2Frun%2Fmy.sock")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            SourceUrl::parse("mysql://k:secret@db/keystone").map(|u| u.redacted()),
            Ok("mysql://k:***@db/keystone".to_string())
        );
        assert!(SourceUrl::parse("mysql+pymysql:///keystone").is_err());
        assert!(matches!(
            SourceUrl::parse("sqlite:///k.db"),
            Ok(SourceUrl::Storage(DatabaseUrl::Sqlite { .. }))
        ));
    }

    #[test]
    fn custom_method_order_is_kept() {
        let env = vec![(
            "KEYSTONE_AUTH__METHODS".into(),
            "password, token,totp".into(),
        )];
        let s = Settings::load_with_env(None, &env).expect("load");
        assert_eq!(s.auth.methods, vec!["password", "token", "totp"]);
    }
}
