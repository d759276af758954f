//! Fernet keys in the shared database (`[fernet_tokens] key_store = database`): one
//! key set for every replica, encrypted under the key-encryption key, rotated by the
//! cluster itself.
//!
//! The rules that keep every token valid everywhere:
//! - every replica records which key-set version it has loaded (a heartbeat each
//!   `[revoke] refresh_interval`); a replica silent for `replica_timeout` is not live;
//! - a rotation promotes the staged key only when every live replica has loaded the
//!   current version, so each live replica already holds the key that starts
//!   encrypting; the version is compare-and-set, so two rotators cannot both win;
//! - a replica whose last confirmation is older than `replica_timeout / 2` re-reads the
//!   set before it issues or validates anything (after a pause, a network split), so it
//!   never answers with keys the others have moved past;
//! - a key is purged only once no token it encrypted can still be accepted
//!   (`retired_at + expiration + allow_expired_window`), whatever max_active_keys says.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use fernet::Fernet;
use tracing::{info, warn};

use super::kek::KeyEncryptionKey;
use super::repository::{KeyError, KeyText};
use crate::clock::Clock;
use crate::model::{rotation_plan, KeySetState, Replica, StoredKey};
use crate::store::{RotationLock, Store};

/// One decrypted key: index, text (secret), when made and when it stopped being primary.
#[derive(Clone)]
pub struct OpenKey {
    pub idx: u64,
    key: String,
    pub created_at: i64,
    pub retired_at: i64,
}

impl std::fmt::Debug for OpenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenKey")
            .field("idx", &self.idx)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl OpenKey {
    pub fn text(&self) -> &str {
        &self.key
    }
}

/// The decrypted key set at one version, ascending by index.
#[derive(Clone, Debug, Default)]
pub struct OpenSet {
    pub state: KeySetState,
    pub keys: Vec<OpenKey>,
}

impl OpenSet {
    /// The highest index: the primary (0 alone is primary, Keystone's quirk).
    pub fn primary(&self) -> Option<u64> {
        self.keys.last().map(|k| k.idx)
    }

    /// Keystone's load order: primary first, staged 0 last.
    fn fernets(&self) -> Result<Vec<Fernet>, KeyError> {
        self.keys
            .iter()
            .rev()
            .map(|k| {
                Fernet::new(&k.key).ok_or(KeyError::KekMismatch {
                    idx: k.idx,
                    path: Default::default(),
                })
            })
            .collect()
    }
}

/// What a rotation must respect.
#[derive(Clone, Debug, Default)]
pub struct RotateRules {
    /// Rotate only if the primary is at least this old (seconds): automatic rotation.
    pub due_every: Option<u64>,
    /// Promote only once every replica seen within this many seconds has loaded the
    /// current version.
    pub replica_timeout: Option<u64>,
    /// Purge down to max_active_keys even keys a token may still need (`--force`).
    pub force: bool,
}

/// What a rotation did, or why it did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateResult {
    Rotated {
        previous_primary: u64,
        new_primary: u64,
        removed: Vec<u64>,
        /// Over max_active_keys, kept because tokens they encrypted are still acceptable.
        kept: Vec<u64>,
        version: i64,
    },
    /// Not due until this time (epoch seconds).
    NotDue { next_at: i64 },
    /// These live replicas have not loaded the current version yet.
    Waiting { replicas: Vec<String> },
    /// Another writer changed the key set first.
    Lost,
}

/// The key set in the database and the operations on it (setup, rotation, import,
/// export), for the server and the CLI alike.
#[derive(Clone)]
pub struct DatabaseKeys {
    store: Store,
    kek: Arc<KeyEncryptionKey>,
    clock: Clock,
    max_active_keys: usize,
    /// `expiration + allow_expired_window`: how long a retired key is still needed.
    retain_secs: i64,
}

impl std::fmt::Debug for DatabaseKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseKeys")
            .field("kek", &self.kek)
            .field("max_active_keys", &self.max_active_keys)
            .finish_non_exhaustive()
    }
}

impl DatabaseKeys {
    pub fn new(
        store: Store,
        kek: KeyEncryptionKey,
        clock: Clock,
        max_active_keys: usize,
        retain_secs: i64,
    ) -> Self {
        Self {
            store,
            kek: Arc::new(kek),
            clock,
            max_active_keys,
            retain_secs,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn max_active_keys(&self) -> usize {
        self.max_active_keys
    }

    /// Reads and decrypts the whole set.
    pub async fn open_set(&self) -> Result<OpenSet, KeyError> {
        let (state, stored) = self.store.fernet_keys().await?;
        let keys = stored
            .into_iter()
            .map(|k| {
                Ok(OpenKey {
                    key: self.kek.open(k.idx, &k.material)?,
                    idx: k.idx,
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                })
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(OpenSet { state, keys })
    }

    fn seal(&self, keys: &[OpenKey]) -> Vec<StoredKey> {
        keys.iter()
            .map(|k| StoredKey {
                idx: k.idx,
                material: self.kek.seal(&k.key),
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect()
    }

    fn fresh_key(&self, idx: u64) -> OpenKey {
        OpenKey {
            idx,
            key: Fernet::generate_key(),
            created_at: self.clock.now_secs(),
            retired_at: 0,
        }
    }

    /// `fernet setup` for the database: with no keys yet, a staged key 0 and a
    /// primary 1 (Keystone's setup: create 0, rotate once). False if keys exist.
    pub async fn setup(&self, who: &str) -> Result<bool, KeyError> {
        let set = self.open_set().await?;
        if !set.keys.is_empty() {
            return Ok(false);
        }
        let keys = [self.fresh_key(0), self.fresh_key(1)];
        let written = self
            .store
            .replace_fernet_keys(
                set.state.version,
                &self.seal(&keys),
                self.clock.now_secs(),
                who,
            )
            .await?;
        if written {
            info!(who, "created the Fernet key set in the database");
        }
        Ok(written)
    }

    /// Keystone's rotation (staged → primary, new staged, purge the lowest) on the
    /// database's set, under the rules; compare-and-set on the version.
    pub async fn rotate(&self, who: &str, rules: &RotateRules) -> Result<RotateResult, KeyError> {
        let set = self.open_set().await?;
        let now = self.clock.now_secs();
        if set.keys.is_empty() {
            return Err(KeyError::DatabaseEmpty);
        }
        if let Some(every) = rules.due_every {
            let next_at = set.state.rotated_at.saturating_add(every as i64);
            if now < next_at {
                return Ok(RotateResult::NotDue { next_at });
            }
        }
        if let Some(timeout) = rules.replica_timeout {
            let behind: Vec<String> = self
                .store
                .fernet_replicas(now - timeout as i64)
                .await?
                .into_iter()
                .filter(|r| r.loaded_version < set.state.version)
                .map(|r| r.id)
                .collect();
            if !behind.is_empty() {
                return Ok(RotateResult::Waiting { replicas: behind });
            }
        }
        let mut by_idx: BTreeMap<u64, OpenKey> =
            set.keys.iter().cloned().map(|k| (k.idx, k)).collect();
        let previous_primary = set.primary().unwrap_or(0);
        let Some(mut staged) = by_idx.remove(&0) else {
            return Err(KeyError::DatabaseNoStagedKey);
        };
        let new_primary = previous_primary
            .checked_add(1)
            .ok_or(KeyError::DatabaseNoStagedKey)?;
        if let Some(old) = by_idx.get_mut(&previous_primary) {
            old.retired_at = now;
        }
        staged.idx = new_primary;
        by_idx.insert(new_primary, staged);
        by_idx.insert(0, self.fresh_key(0));
        // Keystone's plan, from the set as it was before this rotation.
        let before: Vec<u64> = set.keys.iter().map(|k| k.idx).collect();
        let (_, candidates) = rotation_plan(&before, self.max_active_keys);
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for idx in candidates {
            let needed = by_idx
                .get(&idx)
                .is_some_and(|k| k.retired_at == 0 || now - k.retired_at < self.retain_secs);
            if needed && !rules.force {
                kept.push(idx);
            } else {
                by_idx.remove(&idx);
                removed.push(idx);
            }
        }
        let keys: Vec<OpenKey> = by_idx.into_values().collect();
        if !self
            .store
            .replace_fernet_keys(set.state.version, &self.seal(&keys), now, who)
            .await?
        {
            return Ok(RotateResult::Lost);
        }
        if !kept.is_empty() {
            warn!(?kept, "kept Fernet keys beyond max_active_keys: tokens they encrypted can still be accepted (expiration + allow_expired_window)");
        }
        info!(
            who,
            previous_primary,
            new_primary,
            ?removed,
            "rotated the Fernet keys in the database"
        );
        Ok(RotateResult::Rotated {
            previous_primary,
            new_primary,
            removed,
            kept,
            version: set.state.version + 1,
        })
    }

    /// `fernet import`: a file repository's keys become the database's set. Refuses
    /// to replace existing keys unless `replace` (that ends every token they made).
    /// Keys whose retirement time is unknown count as retired now, so none is purged
    /// before the tokens it may have encrypted are gone.
    pub async fn import(
        &self,
        keys: Vec<KeyText>,
        replace: bool,
        who: &str,
    ) -> Result<Option<usize>, KeyError> {
        let set = self.open_set().await?;
        if !set.keys.is_empty() && !replace {
            return Ok(None);
        }
        let now = self.clock.now_secs();
        let primary = keys.iter().map(|k| k.index).max().unwrap_or(0);
        let open: Vec<OpenKey> = keys
            .into_iter()
            .map(|k| OpenKey {
                idx: k.index,
                created_at: k
                    .modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(now, |d| d.as_secs() as i64),
                retired_at: if k.index == primary || k.index == 0 {
                    0
                } else {
                    now
                },
                key: k.key,
            })
            .collect();
        let count = open.len();
        if !self
            .store
            .replace_fernet_keys(set.state.version, &self.seal(&open), now, who)
            .await?
        {
            return Err(KeyError::Store(crate::store::StoreError::Conflict {
                what: "the Fernet key set (changed while importing; run the import again)".into(),
            }));
        }
        Ok(Some(count))
    }

    /// The replicas seen within `within` seconds.
    pub async fn replicas(&self, within: u64) -> Result<Vec<Replica>, KeyError> {
        let now = self.clock.now_secs();
        Ok(self.store.fernet_replicas(now - within as i64).await?)
    }
}

/// Who this server is in the replica table.
#[derive(Clone, Debug)]
pub struct ReplicaIdentity {
    pub id: String,
    pub host: String,
    pub started_at: i64,
}

impl ReplicaIdentity {
    /// `host:pid:random`, unique per process start.
    pub fn of_this_process(clock: &Clock, port: Option<u16>) -> Self {
        let host = hostname();
        let suffix = crate::model::new_id();
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        Self {
            id: format!("{host}{port}:{}:{}", std::process::id(), &suffix[..8]),
            host,
            started_at: clock.now_secs(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What a replica serves with: the last confirmed set.
struct Loaded {
    version: i64,
    fernets: Arc<Vec<Fernet>>,
    state: KeySetState,
    count: usize,
}

/// A replica's view of the database's key set. Requests never query the database:
/// they use the keys confirmed by the last refresh, unless that is older than
/// `fresh_for`, in which case they wait for a refresh first.
pub struct SharedKeyRing {
    keys: DatabaseKeys,
    me: ReplicaIdentity,
    current: RwLock<Option<Loaded>>,
    /// Nanoseconds after `born` when the last successful confirmation began.
    confirmed_at: AtomicU64,
    /// When the last failed on-demand refresh ended, to fail fast during an outage.
    failed_at: AtomicU64,
    born: Instant,
    fresh_for: Duration,
    replica_timeout: u64,
    leading: AtomicBool,
    /// Whether this process records itself as a replica: a server does, a CLI
    /// command that only needs the keys does not (it would count as live).
    announce: AtomicBool,
    sync: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SharedKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeyRing")
            .field("replica", &self.me.id)
            .field("fresh_for", &self.fresh_for)
            .finish_non_exhaustive()
    }
}

/// How many times a refresh re-reads when the set moves under it.
const CONFIRM_ATTEMPTS: usize = 5;

impl SharedKeyRing {
    /// Loads the set; fails on an empty set or a wrong key-encryption key, so a
    /// server never starts without usable keys. It does not count as a replica until
    /// [`SharedKeyRing::announce`].
    pub async fn open(
        keys: DatabaseKeys,
        me: ReplicaIdentity,
        replica_timeout: u64,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            keys,
            me,
            current: RwLock::new(None),
            confirmed_at: AtomicU64::new(0),
            failed_at: AtomicU64::new(0),
            born: Instant::now(),
            fresh_for: Duration::from_secs(replica_timeout.max(2) / 2),
            replica_timeout,
            leading: AtomicBool::new(false),
            announce: AtomicBool::new(false),
            sync: tokio::sync::Mutex::new(()),
        };
        ring.refresh().await?;
        Ok(ring)
    }

    /// From now on this process records what it has loaded (a serving replica), and
    /// does so at once.
    pub async fn announce(&self) -> Result<(), KeyError> {
        self.announce.store(true, Ordering::Release);
        self.confirmed_at.store(0, Ordering::Release);
        self.refresh().await
    }

    pub fn replica(&self) -> &ReplicaIdentity {
        &self.me
    }

    pub fn database_keys(&self) -> &DatabaseKeys {
        &self.keys
    }

    fn elapsed_nanos(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long since the keys were last confirmed.
    pub fn confirmed_age(&self) -> Duration {
        let at = self.confirmed_at.load(Ordering::Acquire);
        Duration::from_nanos(self.elapsed_nanos().saturating_sub(at))
    }

    /// The keys to use now (primary first). The fast path is an atomic load and a
    /// clone of an `Arc`; a stale ring refreshes before answering.
    pub async fn keys(&self) -> Result<Arc<Vec<Fernet>>, KeyError> {
        if self.confirmed_age() < self.fresh_for {
            if let Some(keys) = self.loaded_keys() {
                return Ok(keys);
            }
        }
        // During an outage, don't queue every request behind a database round trip.
        let failed = self.failed_at.load(Ordering::Acquire);
        if failed != 0 && self.elapsed_nanos().saturating_sub(failed) < 200_000_000 {
            return Err(self.stale());
        }
        match self.refresh().await {
            Ok(()) => self.loaded_keys().ok_or(KeyError::DatabaseEmpty),
            Err(e) => {
                self.failed_at
                    .store(self.elapsed_nanos().max(1), Ordering::Release);
                warn!(error = %e, "could not confirm the Fernet keys with the database");
                Err(self.stale())
            }
        }
    }

    fn stale(&self) -> KeyError {
        KeyError::Stale {
            secs: self.confirmed_age().as_secs(),
        }
    }

    fn loaded_keys(&self) -> Option<Arc<Vec<Fernet>>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().map(|l| Arc::clone(&l.fernets))
    }

    /// The version this replica serves with, and the set's state it came with.
    pub fn loaded(&self) -> Option<(i64, KeySetState, usize)> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .map(|l| (l.version, l.state.clone(), l.count))
    }

    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Reads the version, reloads the set if it moved, records what this replica
    /// has loaded, and reads the version again: if it moved meanwhile (a rotation
    /// that did not wait for us, because we were not yet, or no longer, live), go
    /// round again. Only then are the keys confirmed.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let _one_at_a_time = self.sync.lock().await;
        let started = self.elapsed_nanos().max(1);
        let mut state = self.keys.store.fernet_key_state().await?;
        for _ in 0..CONFIRM_ATTEMPTS {
            let loaded_version = self.loaded().map(|(v, _, _)| v);
            if loaded_version != Some(state.version) {
                let set = self.keys.open_set().await?;
                if set.keys.is_empty() {
                    return Err(KeyError::DatabaseEmpty);
                }
                let fernets = Arc::new(set.fernets()?);
                info!(version = set.state.version, count = set.keys.len(), primary = ?set.primary(), "loaded Fernet keys from the database");
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                *current = Some(Loaded {
                    version: set.state.version,
                    count: set.keys.len(),
                    fernets,
                    state: set.state.clone(),
                });
                state = set.state;
            }
            if !self.announce.load(Ordering::Acquire) {
                self.confirmed_at.store(started, Ordering::Release);
                self.failed_at.store(0, Ordering::Release);
                return Ok(());
            }
            self.keys
                .store
                .record_fernet_replica(&Replica {
                    id: self.me.id.clone(),
                    host: self.me.host.clone(),
                    loaded_version: state.version,
                    started_at: self.me.started_at,
                    last_seen: self.keys.clock.now_secs(),
                    leading: self.is_leading(),
                })
                .await?;
            let after = self.keys.store.fernet_key_state().await?;
            if after.version == state.version {
                self.confirmed_at.store(started, Ordering::Release);
                self.failed_at.store(0, Ordering::Release);
                return Ok(());
            }
            state = after;
        }
        Err(KeyError::Stale {
            secs: self.confirmed_age().as_secs(),
        })
    }

    /// Background upkeep: refresh every `every`; with `rotate_every`, hold (or try
    /// to take) the rotation lock and rotate when due. Runs until the process exits.
    pub fn spawn_upkeep(
        self: Arc<Self>,
        every: Duration,
        rotate_every: Option<u64>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut lock: Option<RotationLock> = None;
            let mut rounds: u64 = 0;
            loop {
                tick.tick().await;
                rounds += 1;
                if let Err(e) = self.refresh().await {
                    warn!(error = %e, "Fernet key refresh failed");
                }
                let Some(interval) = rotate_every else {
                    continue;
                };
                if let Err(e) = self.rotation_round(&mut lock, interval).await {
                    warn!(error = %e, "automatic Fernet key rotation failed");
                }
                // Forget replicas gone for a day (restarts leave their rows behind).
                if rounds.is_multiple_of(600) && self.is_leading() {
                    let cutoff = self.keys.clock.now_secs() - 86_400;
                    if let Err(e) = self.keys.store.forget_fernet_replicas(cutoff).await {
                        warn!(error = %e, "could not forget old replicas");
                    }
                }
            }
        })
    }

    /// One round of automatic rotation: keep or take the lock, rotate if due.
    pub async fn rotation_round(
        &self,
        lock: &mut Option<RotationLock>,
        interval: u64,
    ) -> Result<Option<RotateResult>, KeyError> {
        let held = match lock.as_mut() {
            Some(l) => l.held().await,
            None => false,
        };
        if !held {
            if lock.take().is_some() {
                warn!(replica = %self.me.id, "lost the Fernet rotation lock");
            }
            *lock = self
                .keys
                .store
                .try_rotation_lock(self.replica_timeout)
                .await?;
            if lock.is_some() {
                info!(replica = %self.me.id, "holding the Fernet rotation lock: this replica rotates the keys");
            }
        }
        self.leading.store(lock.is_some(), Ordering::Release);
        if lock.is_none() {
            return Ok(None);
        }
        let rules = RotateRules {
            due_every: Some(interval),
            replica_timeout: Some(self.replica_timeout),
            force: false,
        };
        let result = self.keys.rotate(&self.me.id, &rules).await?;
        match &result {
            RotateResult::Rotated { .. } => self.refresh().await?,
            RotateResult::Waiting { replicas } => {
                tracing::debug!(
                    ?replicas,
                    "rotation due, waiting for replicas to load the staged key"
                )
            }
            RotateResult::NotDue { .. } | RotateResult::Lost => {}
        }
        Ok(Some(result))
    }
}
