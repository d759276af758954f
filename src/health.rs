//! What `/healthcheck` reports: can this replica answer correctly right now? A load
//! balancer takes it out of rotation when not (oslo.middleware's contract: 200 or 503).

use std::path::PathBuf;

use std::time::{Duration, SystemTime};

use crate::revoke::RevokeService;
use crate::store::Store;
use crate::telemetry::metrics::Readings;
use crate::token::keys::{KeyRole, TokenKeys};
use crate::token::provider::TokenProvider;

/// One check's outcome; `reason` is for operators (admin tokens, localhost), never a
/// secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub reason: String,
}

/// Every check, in a fixed order.
#[derive(Clone, Debug)]
pub struct Report {
    /// `[healthcheck] disable_by_file_path` exists: the operator is draining the node.
    pub disabled_by_file: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        !self.disabled_by_file && self.checks.iter().all(|c| c.ok)
    }

    /// The failing checks' names, for the anonymous answer and the log.
    pub fn failing(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }
}

#[derive(Clone)]
pub struct HealthService {
    store: Store,
    revoke: RevokeService,
    tokens: TokenProvider,
    disable_file: Option<PathBuf>,
    /// `rotation_interval` when this cluster rotates by itself.
    rotate_every: Option<u64>,
}

impl HealthService {
    pub fn new(
        store: Store,
        revoke: RevokeService,
        tokens: TokenProvider,
        disable_file: Option<PathBuf>,
        rotate_every: Option<u64>,
    ) -> Self {
        HealthService {
            store,
            revoke,
            tokens,
            disable_file,
            rotate_every,
        }
    }

    /// The state gauges `/metrics` shows: no query, only what is in memory (and, for
    /// a file repository, one directory listing).
    pub fn readings(&self) -> Readings {
        let mut r = Readings {
            revocation_events: self.revoke.len(),
            revocation_age: self.revoke.age(),
            pools: self.store.pool_stats(),
            ..Readings::default()
        };
        match self.tokens.keys() {
            TokenKeys::Database(ring) => {
                if let Some((_, state, count)) = ring.loaded() {
                    let now = self.tokens.clock().now_secs();
                    r.keys = count;
                    r.primary_age = u64::try_from(now - state.rotated_at)
                        .ok()
                        .map(Duration::from_secs);
                    r.next_rotation_secs = self
                        .rotate_every
                        .map(|every| state.rotated_at + every as i64 - now);
                }
            }
            TokenKeys::File(ring) => {
                if let Ok(list) = ring.repository().list() {
                    r.keys = list.len();
                    // A rotation writes a fresh staged key: its age is the primary's.
                    r.primary_age = list
                        .iter()
                        .find(|k| k.role == KeyRole::Staged)
                        .and_then(|k| SystemTime::now().duration_since(k.modified).ok());
                }
            }
        }
        r
    }

    /// Runs every check: one `SELECT 1`, the revocation index's age, the key set.
    pub async fn report(&self) -> Report {
        let disabled_by_file = self.disable_file.as_deref().is_some_and(|p| p.exists());
        let database = match self.store.ping().await {
            Ok(()) => ok("database"),
            Err(e) => failed("database", format!("database unreachable: {e}")),
        };
        let revocations = match self.revoke.check_fresh() {
            Ok(()) => ok("revocations"),
            Err(e) => failed("revocations", e.to_string()),
        };
        let keys = match self.tokens.keys().current().await {
            Ok(keys) if !keys.is_empty() => ok("keys"),
            Ok(_) => failed("keys", "no Fernet keys loaded".into()),
            Err(e) => failed("keys", e.to_string()),
        };
        Report {
            disabled_by_file,
            checks: vec![database, revocations, keys],
        }
    }
}

fn ok(name: &'static str) -> Check {
    Check {
        name,
        ok: true,
        reason: "OK".into(),
    }
}

fn failed(name: &'static str, reason: String) -> Check {
    Check {
        name,
        ok: false,
        reason,
    }
}
