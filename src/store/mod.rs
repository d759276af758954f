//! Every SQL statement of keystone-rs lives under this module.
//!
//! One code path for SQLite and PostgreSQL: sqlx's `Any` driver with portable SQL
//! (`$n` placeholders, TEXT ids, BIGINT epoch seconds). The only per-backend pieces
//! are the migration folders, SQLite's pragmas, and SQLite's single writer: SQLite
//! allows one writer at a time, so writes go through a one-connection pool instead
//! of failing with "database is locked" under load.

mod application_credential;
mod assignment;
mod catalog;
mod credential;
mod domain_config;
mod identity;
mod import;
mod keys;
mod keystone_source;
mod limit;
mod login;
mod oauth1;
mod policy;
mod resource;
mod revoke;
mod select;
mod trust;

pub use application_credential::AccessRuleRefusal;
pub(crate) use assignment::assignment_type;
pub use import::ImportWrite;
pub use keys::RotationLock;
pub use keystone_source::KeystoneSource;
pub use limit::RegisteredLimitWrite;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row};

use crate::cache::Generation;
use crate::config::DatabaseUrl;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("database unavailable while {context}: {source}")]
    Unavailable {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error while {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row while {context}: {detail}")]
    Corrupt {
        context: &'static str,
        detail: String,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Adds what the store was doing to a sqlx error, and sorts outages from bugs.
pub(crate) trait DbContext<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|source| classify(context, source))
    }
}

fn classify(context: &'static str, source: sqlx::Error) -> StoreError {
    if is_outage(&source) {
        outage_began(context, &source);
        return StoreError::Unavailable { context, source };
    }
    match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what: context.to_string(),
        },
        _ => StoreError::Database { context, source },
    }
}

/// Errors that say the database cannot serve right now (and may again without any
/// change on our side): 503, never 401 or 500.
fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let message = db.message();
            message.contains("database is locked")
                || message.contains("database is busy")
                || db.code().is_some_and(|c| outage_code(&c))
        }
        _ => false,
    }
}

/// SQLite result codes (numeric, at most 4 digits; the low byte is the primary code)
/// and PostgreSQL SQLSTATEs (always 5 characters) of an unavailable database.
fn outage_code(code: &str) -> bool {
    if let (true, Ok(n)) = (code.len() < 5, code.parse::<i64>()) {
        // BUSY, LOCKED, READONLY, IOERR, FULL (disk full), CANTOPEN, PROTOCOL
        return matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14 | 15);
    }
    // 08: connection exception; 53: insufficient resources (disk full, out of
    // memory, too many connections); 57P01..57P05: shut down, crashed, starting,
    // idle-session timeout; 58: system I/O error; 25006: read-only (a standby);
    // 40001 / 40P01: serialization failure, deadlock (the client may retry).
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || matches!(code, "25006" | "40001" | "40P01")
}

/// Whether an outage is under way: it is logged once when it begins and once when
/// it ends, not once per request.
static OUTAGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn outage_began(context: &'static str, source: &sqlx::Error) {
    if !OUTAGE.swap(true, std::sync::atomic::Ordering::AcqRel) {
        tracing::error!(context, error = %source, "database unavailable: answering 503 until it is back");
    } else {
        tracing::debug!(context, error = %source, "database still unavailable");
    }
}

fn outage_ended() {
    if OUTAGE.swap(false, std::sync::atomic::Ordering::AcqRel) {
        tracing::warn!("database available again");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a read pool and a write pool (the same pool on PostgreSQL).
#[derive(Clone, Debug)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    generation: Generation,
    /// PostgreSQL's URL, for connections outside the pool (the rotation lock).
    postgres_url: Option<ConnectUrl>,
}

/// A connection URL, which may hold a password: never printed.
#[derive(Clone)]
struct ConnectUrl(String);

impl std::fmt::Debug for ConnectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects without touching the schema; `migrate()` creates or upgrades it.
    pub async fn connect(
        url: &DatabaseUrl,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        match url {
            DatabaseUrl::Sqlite { path } => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Unavailable {
                        context: "creating the SQLite directory",
                        source: sqlx::Error::Io(e),
                    })?;
                }
                // The database holds password hashes: create it readable by us only.
                if !path.exists() {
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)
                        .map_err(|e| StoreError::Unavailable {
                            context: "creating the SQLite database",
                            source: sqlx::Error::Io(e),
                        })?;
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(acquire_timeout)
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                sqlx::query("PRAGMA journal_mode = WAL")
                                    .execute(&mut *conn)
                                    .await?;
                                sqlx::query("PRAGMA busy_timeout = 5000")
                                    .execute(&mut *conn)
                                    .await?;
                                sqlx::query("PRAGMA foreign_keys = ON")
                                    .execute(&mut *conn)
                                    .await?;
                                sqlx::query("PRAGMA synchronous = NORMAL")
                                    .execute(&mut *conn)
                                    .await?;
                                Ok(())
                            })
                        })
                        .connect(&url)
                };
                // Open the writer first so the WAL switch happens before readers attach.
                let write = pool(1).await.ctx("opening the SQLite database")?;
                let read = pool(max_connections.max(1))
                    .await
                    .ctx("opening the SQLite database")?;
                Ok(Store {
                    read,
                    write,
                    backend: Backend::Sqlite,
                    generation: Generation::default(),
                    postgres_url: None,
                })
            }
            DatabaseUrl::Postgres { url } => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .acquire_timeout(acquire_timeout)
                    .connect(url)
                    .await
                    .ctx("connecting to PostgreSQL")?;
                Ok(Store {
                    read: pool.clone(),
                    write: pool,
                    backend: Backend::Postgres,
                    generation: Generation::default(),
                    postgres_url: Some(ConnectUrl(url.clone())),
                })
            }
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.write).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.write).await?,
        }
        Ok(())
    }

    /// True once `migrate()` has created the schema; the server refuses to start otherwise.
    pub async fn is_migrated(&self) -> StoreResult<bool> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'revocation_event'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'revocation_event'"
            }
        };
        let row = sqlx::query(sql)
            .fetch_one(&self.read)
            .await
            .ctx("checking the schema")?;
        Ok(int(&row, "n")? > 0)
    }

    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// Starts a write: one transaction on the writer pool. Every store write goes
    /// through one, so a failure anywhere rolls the whole write back and the
    /// connection goes back clean (or is closed), and `WriteTx::commit` announces the
    /// write in the same transaction.
    pub(crate) async fn begin_write(&self, context: &'static str) -> StoreResult<WriteTx<'_>> {
        let waiting = std::time::Instant::now();
        let conn = self.write.acquire().await;
        crate::telemetry::metrics::db_acquire(waiting.elapsed());
        let mut conn = conn.ctx(context)?;
        if let Err(e) = sqlx::query("BEGIN").execute(&mut *conn).await {
            discard(conn);
            return Err(classify(context, e));
        }
        Ok(WriteTx {
            store: self,
            conn: Some(conn),
            context,
        })
    }

    /// Reads the shared counter; if another server wrote since the last poll,
    /// bumps the local generation so this server's caches drop.
    pub async fn poll_generation(&self) -> StoreResult<()> {
        use std::sync::atomic::Ordering;
        let row = sqlx::query("SELECT value FROM state_generation WHERE id = 1")
            .fetch_one(self.reader())
            .await
            .ctx("reading the state generation")?;
        let value = int(&row, "value")?;
        outage_ended();
        if self.generation.last_db_value.swap(value, Ordering::AcqRel) != value {
            self.generation.bump();
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_ref().map(|u| u.0.as_str())
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Table -> sorted (column, type family, nullable): what the schema parity test compares.
    pub async fn schema_summary(&self) -> StoreResult<Vec<(String, String, String, bool)>> {
        let mut out = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                let tables = sqlx::query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
                )
                .fetch_all(&self.read)
                .await
                .ctx("listing tables")?;
                for t in tables {
                    let table = text(&t, "name")?;
                    let cols = sqlx::query(&format!(
                        "SELECT name, type, \"notnull\" AS not_null, pk FROM pragma_table_info('{table}')"
                    ))
                    .fetch_all(&self.read)
                    .await
                    .ctx("listing columns")?;
                    for c in cols {
                        let pk = int(&c, "pk")? > 0;
                        out.push((
                            table.clone(),
                            text(&c, "name")?,
                            type_family(&text(&c, "type")?),
                            int(&c, "not_null")? == 0 && !pk,
                        ));
                    }
                }
            }
            Backend::Postgres => {
                let cols = sqlx::query(
                    "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, is_nullable::text AS n FROM information_schema.columns WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
                )
                .fetch_all(&self.read)
                .await
                .ctx("listing columns")?;
                for c in cols {
                    out.push((
                        text(&c, "t")?,
                        text(&c, "c")?,
                        type_family(&text(&c, "ty")?),
                        text(&c, "n")? == "YES",
                    ));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Runs `sql` (one or more statements) outside any model: for fault-injection
    /// tests that must break the database on purpose. Never used by the server.
    #[doc(hidden)]
    pub async fn execute_raw_for_test(&self, sql: &str) -> StoreResult<()> {
        sqlx::raw_sql(sql)
            .execute(&self.write)
            .await
            .ctx("running test SQL")?;
        Ok(())
    }

    /// (pool, open connections, idle ones), for the metrics.
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize)> {
        let mut stats = vec![("read", self.read.size(), self.read.num_idle())];
        if self.backend == Backend::Sqlite {
            stats.push(("write", self.write.size(), self.write.num_idle()));
        }
        stats
    }

    /// Closes both pools: every later query fails as in an outage (shutdown, and the
    /// health tests' way to take the database away).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Cheap liveness probe for health checks and the revocation refresher.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .ctx("pinging the database")?;
        Ok(())
    }
}

/// `$<offset+1>, ..., $<offset+n>` for an `IN (...)` list.
pub(crate) fn placeholders(offset: usize, n: usize) -> String {
    (1..=n)
        .map(|i| format!("${}", offset + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many ids one `IN (...)` list carries: well under SQLite's and PostgreSQL's
/// bind limits.
pub(crate) const IN_CHUNK: usize = 500;

/// A write transaction. `commit` bumps the shared state generation *inside* the
/// transaction, then commits: the write and the notice that announces it to every
/// server are one atomic unit (other servers poll the generation row). Dropped
/// without a commit (an error, an early return), it rolls back off the request path;
/// a connection that cannot roll back, or whose COMMIT failed, is closed, never
/// reused: SQLite keeps a transaction open after a failed COMMIT (disk full), and a
/// reused connection would silently swallow every later write.
pub(crate) struct WriteTx<'s> {
    store: &'s Store,
    conn: Option<PoolConnection<Any>>,
    context: &'static str,
}

impl WriteTx<'_> {
    /// The connection to run the write's statements on.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // `commit` takes the transaction by value: no statement can follow it.
            None => unreachable!("write transaction used after its commit"),
        }
    }

    /// Commits and announces: this server's caches drop at once, other servers' at
    /// their next generation poll.
    pub(crate) async fn commit(self) -> StoreResult<()> {
        self.finish(true).await
    }

    /// Commits a write no cache depends on (revocation events: the revocation index
    /// refreshes from the events themselves).
    pub(crate) async fn commit_unannounced(self) -> StoreResult<()> {
        self.finish(false).await
    }

    async fn finish(mut self, announce: bool) -> StoreResult<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let result = async {
            if announce {
                sqlx::query("UPDATE state_generation SET value = value + 1 WHERE id = 1")
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if announce {
            // Also on a failed COMMIT: its outcome may be unknown, and a needless
            // cache drop is harmless.
            self.store.generation.bump();
        }
        match result {
            Ok(()) => {
                outage_ended();
                Ok(())
            }
            Err(e) => {
                discard(conn);
                Err(classify(self.context, e))
            }
        }
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                        discard(conn);
                    }
                });
            }
            Err(_) => discard(conn),
        }
    }
}

/// Takes a connection out of its pool for good: closing it rolls back whatever it
/// had open, and the pool opens a fresh one when needed.
fn discard(conn: PoolConnection<Any>) {
    drop(conn.detach());
}

/// Collapses backend type names into the families both schemas must agree on.
/// SQLite has no boolean type, so PostgreSQL's BOOLEAN counts as an integer.
fn type_family(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    if t.contains("int") || t == "boolean" {
        "integer".into()
    } else if t.contains("char") || t.contains("text") {
        "text".into()
    } else {
        t
    }
}

pub(crate) fn text(row: &AnyRow, col: &'static str) -> StoreResult<String> {
    row.try_get::<String, _>(col).map_err(|e| corrupt(col, e))
}

pub(crate) fn opt_text(row: &AnyRow, col: &'static str) -> StoreResult<Option<String>> {
    row.try_get::<Option<String>, _>(col)
        .map_err(|e| corrupt(col, e))
}

pub(crate) fn int(row: &AnyRow, col: &'static str) -> StoreResult<i64> {
    match row.try_get::<i64, _>(col) {
        Ok(v) => Ok(v),
        Err(_) => row
            .try_get::<i32, _>(col)
            .map(i64::from)
            .map_err(|e| corrupt(col, e)),
    }
}

pub(crate) fn opt_int(row: &AnyRow, col: &'static str) -> StoreResult<Option<i64>> {
    row.try_get::<Option<i64>, _>(col)
        .map_err(|e| corrupt(col, e))
}

/// Booleans are BOOLEAN on PostgreSQL and 0/1 integers on SQLite.
pub(crate) fn boolean(row: &AnyRow, col: &'static str) -> StoreResult<bool> {
    match row.try_get::<bool, _>(col) {
        Ok(v) => Ok(v),
        Err(_) => int(row, col).map(|v| v != 0),
    }
}

pub(crate) fn json_extra(row: &AnyRow) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    let raw = text(row, "extra")?;
    match serde_json::Value::from_str(&raw) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(StoreError::Corrupt {
            context: "reading extra attributes",
            detail: "extra is not a JSON object".into(),
        }),
    }
}

fn corrupt(col: &'static str, e: sqlx::Error) -> StoreError {
    StoreError::Corrupt {
        context: "decoding a row",
        detail: format!("column {col}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::outage_code;

    #[test]
    fn outage_codes_are_those_of_an_unavailable_database() {
        // PostgreSQL: shut down by an administrator, crash shutdown, starting up,
        // connection failures, disk full, too many connections, a read-only standby.
        for code in [
            "57P01", "57P02", "57P03", "08006", "08001", "53100", "53300", "25006",
        ] {
            assert!(outage_code(code), "{code}");
        }
        // SQLite primary and extended codes: BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
        for code in ["5", "6", "8", "10", "13", "14", "266", "522"] {
            assert!(outage_code(code), "{code}");
        }
        // Bad input or bugs are not outages: unique and foreign-key violations,
        // syntax errors, undefined tables, SQLite CONSTRAINT and ERROR.
        for code in ["23505", "23503", "42601", "42P01", "19", "1", "2067"] {
            assert!(!outage_code(code), "{code}");
        }
    }
}
