//! The keys a running server uses, reloaded when the repository changes.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use fernet::Fernet;
use tracing::{info, warn};

use super::repository::*;

// ---------------------------------------------------------------------------
// Server-side cache
// ---------------------------------------------------------------------------

/// Cheap summary of the directory used to notice a rotation without reading
/// any key: the directory mtime plus (name, inode, mtime, length) of every
/// integer-named entry. The inode catches a same-size replacement within one
/// mtime tick (every write is a rename of a new file); symlinks are followed,
/// so Kubernetes secret volumes (`0 -> ..data/0`) are tracked too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
    dir_mtime: Option<SystemTime>,
    entries: Vec<(OsString, u64, Option<SystemTime>, u64)>,
}

pub(super) fn fingerprint(dir: &Path) -> io::Result<Fingerprint> {
    let dir_mtime = fs::metadata(dir)?.modified().ok();
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().and_then(parse_index).is_none() {
            continue;
        }
        match fs::metadata(entry.path()) {
            Ok(meta) => entries.push((name, meta.ino(), meta.modified().ok(), meta.len())),
            Err(_) => entries.push((name, 0, None, 0)),
        }
    }
    entries.sort();
    Ok(Fingerprint { dir_mtime, entries })
}

pub(super) struct Current {
    keys: Option<Arc<Vec<Fernet>>>,
    checked_at: Option<Instant>,
}

#[derive(Default)]
pub(super) struct ReloadState {
    /// Fingerprint of the directory when `Current::keys` was loaded.
    loaded: Option<Fingerprint>,
    /// Last reload error, so a persistent problem is logged once, not every
    /// recheck.
    last_error: Option<String>,
}

/// The keys a running server uses. Keystone re-reads the directory on every
/// encrypt/decrypt, so a rotation by another process takes effect for the very next
/// request; we get the same without reading key files per request:
/// - a file watcher (`notify`: inotify on Linux) marks the ring dirty on any change
///   in the directory;
/// - every call compares the directory's own metadata (one `stat`, no file read):
///   creating, renaming or deleting a key changes it synchronously, so a rotation
///   that finished before a request started is seen by that request even if the
///   watcher's thread has not run yet;
/// - a full fingerprint (every key file's inode, mtime, size) at most once per
///   `recheck` catches what neither sees (a key rewritten in place within one
///   timestamp tick, a filesystem without inotify).
///
/// A known change makes the caller wait for the reload, so no token is issued with
/// a key already gone from disk. A failed reload (a half-written or corrupted file)
/// keeps the last good keys, so a botched rotation never takes the service down.
pub struct KeyRing {
    repo: KeyRepository,
    recheck: Duration,
    current: RwLock<Current>,
    /// Serialises reloads; requests that find it busy use the current keys.
    reload: Mutex<ReloadState>,
    /// Set by the watcher; cleared when a reload starts.
    dirty: Arc<AtomicBool>,
    /// The directory's metadata when the keys were last checked (0: not yet).
    stamp: AtomicU64,
    /// The directory, open, for `dir_stamp`. A directory replaced as a whole (not
    /// its files) is noticed by the periodic fingerprint, which goes by path.
    dir_handle: std::sync::OnceLock<fs::File>,
    /// How many times the directory was examined: for tests.
    checks: AtomicU64,
    /// When the directory's metadata was last read, in nanoseconds since `born`.
    stamped_at: AtomicU64,
    born: Instant,
    stamp_every_nanos: u64,
    /// Kept alive for as long as the ring: dropping it stops the events.
    _watcher: Option<notify::RecommendedWatcher>,
}

/// How often the directory's metadata may be read: 100 µs.
const STAMP_EVERY_NANOS: u64 = 100_000;

/// A digest of what a rename, create or unlink in the directory changes (its
/// mtime and ctime), from an open handle: one `fstat`, no path lookup. 1 when it
/// cannot be read, never 0.
fn dir_stamp(dir: Option<&fs::File>) -> u64 {
    let Some(Ok(m)) = dir.map(fs::File::metadata) else {
        return 1;
    };
    let mix = |h: u64, v: i64| (h ^ v as u64).wrapping_mul(0x100_0000_01b3);
    let h = [m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()]
        .into_iter()
        .fold(0xcbf2_9ce4_8422_2325, mix);
    h.max(2)
}

impl fmt::Debug for KeyRing {
    // Manual: Fernet has no Debug, and key material must never be printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.repo.dir)
            .field("recheck", &self.recheck)
            .field("watching", &self._watcher.is_some())
            .finish_non_exhaustive()
    }
}

/// Watches `dir` (not recursively); None, with a warning, where that fails: the
/// metadata check and the periodic fingerprint still see rotations.
fn watch(dir: &Path, dirty: Arc<AtomicBool>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    // Reading keys opens the directory and the files: those access events must not
    // count, or every reload would trigger the next one.
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(e) if e.kind.is_access() => {}
        _ => dirty.store(true, Ordering::Release),
    };
    let watched = notify::recommended_watcher(handler).and_then(|mut w| {
        w.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot watch the Fernet key repository; rotations are noticed by polling");
            None
        }
    }
}

impl KeyRing {
    /// Loads lazily on the first [`KeyRing::keys`] call; no watcher.
    pub fn new(repo: KeyRepository, recheck: Duration) -> Self {
        Self::build(repo, recheck, false)
    }

    fn build(repo: KeyRepository, recheck: Duration, watched: bool) -> Self {
        let dirty = Arc::new(AtomicBool::new(false));
        let watcher = if watched {
            watch(&repo.dir, Arc::clone(&dirty))
        } else {
            None
        };
        Self {
            repo,
            recheck,
            current: RwLock::new(Current {
                keys: None,
                checked_at: None,
            }),
            reload: Mutex::new(ReloadState::default()),
            dirty,
            stamp: AtomicU64::new(0),
            dir_handle: std::sync::OnceLock::new(),
            checks: AtomicU64::new(0),
            stamped_at: AtomicU64::new(0),
            born: Instant::now(),
            stamp_every_nanos: STAMP_EVERY_NANOS,
            _watcher: watcher,
        }
    }

    /// Watches the directory and loads now, so the server fails at start-up on a
    /// missing or empty repository, as Keystone's fernet provider does.
    pub fn open(repo: KeyRepository, recheck: Duration) -> Result<Self, KeyError> {
        let ring = Self::build(repo, recheck, true);
        ring.keys()?;
        Ok(ring)
    }

    pub fn repository(&self) -> &KeyRepository {
        &self.repo
    }

    /// Reads the directory's metadata on every call (tests that need "at once" to
    /// mean exactly that).
    pub fn stamp_every_call(mut self) -> Self {
        self.stamp_every_nanos = 0;
        self
    }

    /// How many times the directory was examined since the ring was made.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Whether something is known to have changed since the last check. The
    /// directory's metadata is read at most once per `STAMP_EVERY` (a syscall per
    /// validation costs a tenth of the throughput): a rotation that finished before
    /// a request started is seen by it unless another request looked less than
    /// that long ago, and the watcher usually reports it sooner still.
    fn changed(&self) -> bool {
        if self.dirty.load(Ordering::Acquire) {
            return true;
        }
        let now = u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.stamped_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.stamp_every_nanos {
            return false;
        }
        self.stamped_at.store(now, Ordering::Relaxed);
        dir_stamp(self.dir_handle.get()) != self.stamp.load(Ordering::Acquire)
    }

    /// Current keys in load order (`[0]` is the primary that encrypts; try
    /// all in order to decrypt). Never empty. Errors only if no good set of
    /// keys was ever loaded.
    pub fn keys(&self) -> Result<Arc<Vec<Fernet>>, KeyError> {
        let changed = self.changed();
        let cached = {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if let (Some(keys), Some(at)) = (&current.keys, current.checked_at) {
                if !changed && at.elapsed() < self.recheck {
                    return Ok(Arc::clone(keys));
                }
            }
            current.keys.clone()
        };
        let mut state = match self.reload.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // A routine recheck is under way: don't queue behind it. After a known
            // change, wait for it: the cached keys may include a purged one.
            Err(TryLockError::WouldBlock) => match cached {
                Some(keys) if !changed => return Ok(keys),
                _ => self.reload.lock().unwrap_or_else(PoisonError::into_inner),
            },
        };
        self.refresh(&mut state)
    }

    fn refresh(&self, state: &mut ReloadState) -> Result<Arc<Vec<Fernet>>, KeyError> {
        let previous = {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            // Another thread may have rechecked while we waited for the lock.
            if let (Some(keys), Some(at)) = (&current.keys, current.checked_at) {
                if !self.changed() && at.elapsed() < self.recheck {
                    return Ok(Arc::clone(keys));
                }
            }
            current.keys.clone()
        };
        // Cleared and stamped before loading: a change during the load only causes
        // one more (harmless) reload at the next call.
        self.checks.fetch_add(1, Ordering::Relaxed);
        self.dirty.store(false, Ordering::Release);
        if self.dir_handle.get().is_none() {
            if let Ok(dir) = fs::File::open(&self.repo.dir) {
                let _ = self.dir_handle.set(dir);
            }
        }
        self.stamp
            .store(dir_stamp(self.dir_handle.get()), Ordering::Release);
        let fp = fingerprint(&self.repo.dir).ok();
        if let (Some(keys), Some(fp)) = (&previous, &fp) {
            if state.loaded.as_ref() == Some(fp) {
                state.last_error = None;
                self.store(None);
                return Ok(Arc::clone(keys));
            }
        }
        match self.repo.load() {
            Ok(keys) => {
                let keys = Arc::new(keys);
                info!(dir = %self.repo.dir.display(), count = keys.len(), "loaded Fernet keys");
                state.loaded = fp;
                state.last_error = None;
                self.store(Some(Arc::clone(&keys)));
                Ok(keys)
            }
            Err(e) => match previous {
                Some(keys) => {
                    let message = e.to_string();
                    if state.last_error.as_deref() != Some(message.as_str()) {
                        warn!(error = %message, "could not reload Fernet keys; still using the previously loaded keys");
                        state.last_error = Some(message);
                    }
                    self.store(None);
                    Ok(keys)
                }
                None => Err(e),
            },
        }
    }

    /// Records a completed check, replacing the keys if given.
    fn store(&self, keys: Option<Arc<Vec<Fernet>>>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if keys.is_some() {
            current.keys = keys;
        }
        current.checked_at = Some(Instant::now());
    }
}
