//! Fernet key repository, file-for-file compatible with Keystone's
//! `keystone/common/fernet_utils.py` (SPEC §1), so one key directory can be
//! shared with Python Keystone.
//!
//! Layout: one directory; every regular file whose name is an integer is a
//! key; `0` is the staged key (decrypt only, next primary), the highest index
//! is the primary (encrypts), everything else is a secondary (decrypt only).
//! A key file holds `Fernet.generate_key()`: 44 characters of URL-safe base64
//! of 32 random bytes, no newline, mode 0600; the directory is mode 0700.
//!
//! Besides the Keystone algorithms (`setup`, `rotate`, `list`, `load`) this
//! module provides [`KeyRing`], the server-side cache that notices rotations
//! made by another process, and the rotation-safety arithmetic behind
//! `keystone-rs fernet check` ([`required_max_active_keys`], [`CheckReport`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use fernet::Fernet;
use tracing::{debug, info, warn};

/// Name Keystone writes a new key to before renaming it to `0`.
const TMP_NAME: &str = "0.tmp";
/// Name of the staged key.
const STAGED_NAME: &str = "0";
/// A real key file is 44 bytes; anything much larger is certainly not a key,
/// so we never read more than this (a stray large file must not cost memory).
const MAX_KEY_FILE_LEN: u64 = 1024;

/// Errors from the key repository. Every variant that concerns a file or
/// directory names it, because the operator has to go and fix that path.
#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    /// Keystone enforces `[fernet_tokens] max_active_keys >= 1`; with 0 its
    /// purge loop would delete every key and then crash.
    #[error("max_active_keys must be at least 1 (got {0})")]
    InvalidMaxActiveKeys(usize),
    #[error("Fernet key repository {} does not exist; run `keystone-rs fernet setup`", path.display())]
    RepositoryMissing { path: PathBuf },
    #[error("Fernet key repository {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("no Fernet keys found in {}; run `keystone-rs fernet setup`", path.display())]
    Empty { path: PathBuf },
    #[error(
        "Fernet key repository {} has no staged key `0`, so it cannot be rotated; \
         run `keystone-rs fernet setup` to create a new staged key (it also rotates once)",
        path.display()
    )]
    NoStagedKey { path: PathBuf },
    #[error(
        "key file {} does not contain a valid Fernet key (URL-safe base64 of exactly 32 bytes)",
        path.display()
    )]
    InvalidKey { path: PathBuf },
    #[error("key file {} has the largest possible index; cannot rotate past it", path.display())]
    IndexOverflow { path: PathBuf },
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Builds a `map_err` closure for an I/O failure on `path`.
fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyError {
    let path = path.to_path_buf();
    move |source| KeyError::Io { op, path, source }
}

/// What a key is used for, derived from its index as Keystone does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Index 0: decrypts only; the next rotation promotes it to primary, so
    /// every node already has it before it starts encrypting anywhere.
    Staged,
    /// Highest index: encrypts new tokens (and decrypts).
    Primary,
    /// Any other index: decrypts tokens issued before later rotations.
    Secondary,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::Staged => "staged",
            KeyRole::Primary => "primary",
            KeyRole::Secondary => "secondary",
        })
    }
}

/// One key file as seen by [`KeyRepository::list`]. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub index: u64,
    pub role: KeyRole,
    pub path: PathBuf,
    /// File mtime; rename does not change it, so this is when the key was
    /// generated (as the staged key), not when it became primary.
    pub modified: SystemTime,
    /// Whether the content decodes to a 32-byte key. `load` fails if any
    /// listed key is invalid, exactly like Keystone's `Fernet(key)` would.
    pub valid: bool,
    /// Permission bits (`st_mode & 0o7777`), for `fernet check`.
    pub mode: u32,
}

/// Result of [`KeyRepository::setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    /// Key `0` already existed; nothing was touched (Keystone logs "already
    /// initialized" and stops).
    AlreadyInitialized,
    /// Key `0` was written and one rotation run.
    Initialized {
        /// Whether the directory itself had to be created (mode 0700).
        created_directory: bool,
        rotation: RotateOutcome,
    },
}

/// Result of [`KeyRepository::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateOutcome {
    /// Primary before the rotation (may be 0 when only the staged key existed).
    pub previous_primary: u64,
    /// Index the old staged key was renamed to. With `max_active_keys = 1`
    /// (Keystone quirk) this file is purged at once and `0` acts as primary.
    pub new_primary: u64,
    /// Indexes deleted by the purge, lowest first.
    pub removed: Vec<u64>,
    /// Indexes left in the repository, ascending (always includes 0).
    pub remaining: Vec<u64>,
}

/// A Keystone-compatible Fernet key directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRepository {
    dir: PathBuf,
    max_active_keys: usize,
}

/// One integer-named, non-empty key file found by a scan.
struct Scanned {
    name: String,
    path: PathBuf,
    modified: SystemTime,
    mode: u32,
    fernet: Option<Fernet>,
}

/// Everything a directory scan found, including what Keystone ignores but
/// `fernet check` should mention.
struct Scan {
    dir_mode: u32,
    /// Ascending by index.
    keys: BTreeMap<u64, Scanned>,
    /// Integer-named empty files (Keystone skips them with a warning).
    empty: Vec<PathBuf>,
    /// A leftover `0.tmp` from an interrupted key write.
    tmp_present: bool,
}

impl KeyRepository {
    /// `max_active_keys` is `[fernet_tokens] max_active_keys` (Keystone
    /// default 3, minimum 1); it is only used by `setup`/`rotate`/checks.
    pub fn new(dir: impl Into<PathBuf>, max_active_keys: usize) -> Self {
        Self {
            dir: dir.into(),
            max_active_keys,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_active_keys(&self) -> usize {
        self.max_active_keys
    }

    /// `keystone-manage fernet_setup`: create the directory (0700) if
    /// missing, and unless key `0` exists, write it and rotate once, giving
    /// `{0 staged, 1 primary}`. Without key `0` but with other keys this also
    /// repairs an interrupted rotation, as in Keystone.
    pub fn setup(&self) -> Result<SetupOutcome, KeyError> {
        self.check_max_active_keys()?;
        let created_directory = self.create_dir()?;
        let _lock = self.lock();
        let staged = self.dir.join(STAGED_NAME);
        // Python uses os.path.exists, which follows symlinks.
        if staged
            .try_exists()
            .map_err(io_err("check for staged key", &staged))?
        {
            info!(dir = %self.dir.display(), "Fernet key repository already initialized");
            return Ok(SetupOutcome::AlreadyInitialized);
        }
        let tmp = self.write_tmp_key()?;
        if let Err(source) = fs::rename(&tmp, &staged) {
            remove_quietly(&tmp);
            return Err(KeyError::Io {
                op: "rename new key to",
                path: staged,
                source,
            });
        }
        self.sync_dir()?;
        info!(dir = %self.dir.display(), "created staged Fernet key 0");
        let rotation = self.rotate_locked()?;
        Ok(SetupOutcome::Initialized {
            created_directory,
            rotation,
        })
    }

    /// `keystone-manage fernet_rotate`, Keystone's algorithm exactly (SPEC
    /// §1.4): new key in `0.tmp`, `0` → `max+1` (new primary), `0.tmp` → `0`,
    /// then delete the lowest indexes until `max_active_keys` keys remain.
    ///
    /// Unlike Keystone we refuse up front (changing nothing) when there is no
    /// key at all, no key `0`, or key `0` is not a valid key: promoting a
    /// corrupt key would make every token issue fail.
    pub fn rotate(&self) -> Result<RotateOutcome, KeyError> {
        self.check_max_active_keys()?;
        self.check_dir()?;
        let _lock = self.lock();
        self.rotate_locked()
    }

    /// The rotation proper; the caller holds the directory lock.
    fn rotate_locked(&self) -> Result<RotateOutcome, KeyError> {
        let scan = self.scan()?;
        warn_permissions(&self.dir, &scan);
        let Some((&previous_primary, _)) = scan.keys.last_key_value() else {
            return Err(KeyError::Empty {
                path: self.dir.clone(),
            });
        };
        let Some(staged) = scan.keys.get(&0) else {
            return Err(KeyError::NoStagedKey {
                path: self.dir.clone(),
            });
        };
        if staged.fernet.is_none() {
            return Err(KeyError::InvalidKey {
                path: staged.path.clone(),
            });
        }
        let new_primary =
            previous_primary
                .checked_add(1)
                .ok_or_else(|| KeyError::IndexOverflow {
                    path: self.dir.join(previous_primary.to_string()),
                })?;
        info!(
            dir = %self.dir.display(),
            count = scan.keys.len(),
            previous_primary,
            new_primary,
            "starting Fernet key rotation"
        );

        let tmp = self.write_tmp_key()?;
        let new_primary_path = self.dir.join(new_primary.to_string());
        if let Err(source) = fs::rename(&staged.path, &new_primary_path) {
            remove_quietly(&tmp);
            return Err(KeyError::Io {
                op: "promote staged key to",
                path: new_primary_path,
                source,
            });
        }
        let staged_path = self.dir.join(STAGED_NAME);
        if let Err(source) = fs::rename(&tmp, &staged_path) {
            // Put the old staged key back so the repository is as we found it.
            if let Err(e) = fs::rename(&new_primary_path, &staged.path) {
                warn!(error = %e, path = %new_primary_path.display(),
                    "could not undo promotion of the staged key; run `keystone-rs fernet setup` to restore a staged key");
            }
            remove_quietly(&tmp);
            return Err(KeyError::Io {
                op: "rename new key to",
                path: staged_path,
                source,
            });
        }

        // Purge: every old non-staged key plus the new primary, newest first;
        // drop from the end (lowest index) until max_active_keys - 1 remain.
        let mut keys: Vec<(u64, PathBuf)> = scan
            .keys
            .iter()
            .filter(|(&index, _)| index != 0)
            .map(|(&index, s)| (index, s.path.clone()))
            .collect();
        keys.push((new_primary, new_primary_path));
        keys.reverse();
        let keep = self.max_active_keys.saturating_sub(1);
        let mut removed = Vec::new();
        while keys.len() > keep {
            let Some((index, path)) = keys.pop() else {
                break;
            };
            info!(path = %path.display(), "purging excess Fernet key");
            fs::remove_file(&path).map_err(io_err("remove excess key", &path))?;
            removed.push(index);
        }
        self.sync_dir()?;

        let mut remaining: Vec<u64> = keys.iter().map(|(index, _)| *index).collect();
        remaining.push(0);
        remaining.sort_unstable();
        info!(dir = %self.dir.display(), new_primary, ?removed, "Fernet key rotation done");
        Ok(RotateOutcome {
            previous_primary,
            new_primary,
            removed,
            remaining,
        })
    }

    /// The keys Keystone would load, newest (primary) first, so that
    /// `list()[i]` describes `load()[i]`. Empty files and non-integer names
    /// are not listed; invalid contents are listed with `valid: false`.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let scan = self.scan()?;
        Ok(infos(&scan))
    }

    /// All keys in Keystone's load order (descending index: primary first,
    /// staged `0` last). Never returns an empty vector. Fails, naming the
    /// file, if any key file is not a valid key: Keystone would fail every
    /// request with HTTP 500 in that state.
    pub fn load(&self) -> Result<Vec<Fernet>, KeyError> {
        let scan = self.scan()?;
        warn_permissions(&self.dir, &scan);
        if scan.keys.is_empty() {
            return Err(KeyError::Empty {
                path: self.dir.clone(),
            });
        }
        let mut out = Vec::with_capacity(scan.keys.len());
        for (_, key) in scan.keys.into_iter().rev() {
            match key.fernet {
                Some(fernet) => out.push(fernet),
                None => return Err(KeyError::InvalidKey { path: key.path }),
            }
        }
        if out.len() != self.max_active_keys {
            debug!(
                count = out.len(),
                dir = %self.dir.display(),
                max_active_keys = self.max_active_keys,
                "loaded Fernet keys, but the count differs from max_active_keys; \
                 perhaps there have not been enough rotations yet"
            );
        }
        Ok(out)
    }

    /// Inspects the repository for `keystone-rs fernet check`. Times are in
    /// seconds: `[token] expiration`, `[token] allow_expired_window`, and the
    /// interval at which the operator runs `fernet rotate`.
    pub fn check_report(
        &self,
        expiration: u64,
        window: u64,
        rotation_interval: u64,
        now: SystemTime,
    ) -> Result<CheckReport, KeyError> {
        let scan = self.scan()?;
        let keys = infos(&scan);
        let safety = SafetyCheck::new(self.max_active_keys, expiration, window, rotation_interval);
        let mut problems = Vec::new();
        let mut problem = |severity, message: String| problems.push(Problem { severity, message });

        if let Some(p) = mode_problem("directory", &self.dir, scan.dir_mode, 0o700) {
            problem(p.0, p.1);
        }
        for key in &keys {
            if let Some(p) = mode_problem("key file", &key.path, key.mode, 0o600) {
                problem(p.0, p.1);
            }
            if !key.valid {
                problem(
                    Severity::Error,
                    format!(
                        "key file {} is not a valid Fernet key (URL-safe base64 of 32 bytes); \
                         token validation fails until it is fixed or removed",
                        key.path.display()
                    ),
                );
            }
        }
        for path in &scan.empty {
            problem(
                Severity::Warning,
                format!("key file {} is empty and is ignored", path.display()),
            );
        }
        if keys.is_empty() {
            problem(
                Severity::Error,
                "the repository holds no keys; run `keystone-rs fernet setup`".to_string(),
            );
        } else if !scan.keys.contains_key(&0) {
            problem(
                Severity::Error,
                "there is no staged key 0, so the next rotation will fail; \
                 run `keystone-rs fernet setup` to create one"
                    .to_string(),
            );
        }
        if scan.tmp_present {
            problem(
                Severity::Warning,
                format!(
                    "leftover {} (an interrupted rotation?); the next rotation replaces it",
                    self.dir.join(TMP_NAME).display()
                ),
            );
        }
        if keys.len() > self.max_active_keys {
            problem(
                Severity::Warning,
                format!(
                    "the repository holds {} keys but max_active_keys = {}: the next rotation \
                     deletes the {} oldest",
                    keys.len(),
                    self.max_active_keys,
                    keys.len() + 1 - self.max_active_keys.max(1)
                ),
            );
        }
        if let Some(staged) = scan.keys.get(&0) {
            let since = age(now, staged.modified);
            if rotation_interval > 0 && since > rotation_interval.saturating_mul(3) / 2 {
                problem(
                    Severity::Warning,
                    format!(
                        "the last rotation was {} ago but the rotation interval is {}; \
                         is `keystone-rs fernet rotate` being run?",
                        human_duration(since),
                        human_duration(rotation_interval)
                    ),
                );
            }
        }

        Ok(CheckReport {
            dir: self.dir.clone(),
            dir_mode: scan.dir_mode,
            keys,
            now,
            safety,
            problems,
        })
    }

    fn check_max_active_keys(&self) -> Result<(), KeyError> {
        if self.max_active_keys == 0 {
            return Err(KeyError::InvalidMaxActiveKeys(0));
        }
        Ok(())
    }

    /// Fails with a precise error unless the repository is an existing directory.
    fn check_dir(&self) -> Result<fs::Metadata, KeyError> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(meta),
            Ok(_) => Err(KeyError::NotADirectory {
                path: self.dir.clone(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(KeyError::RepositoryMissing {
                path: self.dir.clone(),
            }),
            Err(source) => Err(KeyError::Io {
                op: "access",
                path: self.dir.clone(),
                source,
            }),
        }
    }

    /// Keystone's `create_directory`: `makedirs(path, 0o700)` if missing, an
    /// existing directory is left as it is. Returns whether it was created.
    fn create_dir(&self) -> Result<bool, KeyError> {
        match self.check_dir() {
            Ok(_) => return Ok(false),
            Err(KeyError::RepositoryMissing { .. }) => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = self.dir.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            }
        }
        match DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {
                info!(dir = %self.dir.display(), "created Fernet key repository");
                Ok(true)
            }
            // Someone else created it meanwhile; leave theirs alone.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.check_dir().map(|_| false),
            Err(source) => Err(KeyError::Io {
                op: "create directory",
                path: self.dir.clone(),
                source,
            }),
        }
    }

    /// Exclusive flock on the directory itself, so two keystone-rs
    /// setups/rotations cannot interleave (Python Keystone takes no lock).
    /// Released when the returned handle is dropped. Best effort: where
    /// locking a directory is unsupported (NFS emulates flock with POSIX
    /// locks, which need a writable descriptor) we warn and go on unlocked,
    /// which is what Keystone always does.
    fn lock(&self) -> Option<File> {
        let locked = File::open(&self.dir).and_then(|dir| dir.lock().map(|()| dir));
        match locked {
            Ok(dir) => Some(dir),
            Err(e) => {
                warn!(dir = %self.dir.display(), error = %e,
                    "could not lock the Fernet key repository; continuing without a lock");
                None
            }
        }
    }

    /// Makes the renames durable.
    fn sync_dir(&self) -> Result<(), KeyError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", &self.dir))
    }

    /// Keystone's `_create_tmp_new_key`: a fresh key in `0.tmp`, mode 0600
    /// from creation (never chmod'ed later), fsync'd; removed on failure.
    fn write_tmp_key(&self) -> Result<PathBuf, KeyError> {
        let tmp = self.dir.join(TMP_NAME);
        // A stale 0.tmp may have another mode; O_CREAT's mode only applies
        // to a new file, so remove it rather than truncate it.
        match fs::remove_file(&tmp) {
            Ok(()) => warn!(path = %tmp.display(), "removed stale temporary key file"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeyError::Io {
                    op: "remove stale temporary key",
                    path: tmp,
                    source,
                })
            }
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        let written = file
            .write_all(Fernet::generate_key().as_bytes())
            .and_then(|()| file.sync_all());
        drop(file);
        if let Err(source) = written {
            remove_quietly(&tmp);
            return Err(KeyError::Io {
                op: "write",
                path: tmp,
                source,
            });
        }
        Ok(tmp)
    }

    /// Keystone's `_get_key_files`: regular files (symlinks followed) with an
    /// integer name, empty ones skipped with a warning.
    fn scan(&self) -> Result<Scan, KeyError> {
        let meta = self.check_dir()?;
        let mut scan = Scan {
            dir_mode: meta.permissions().mode() & 0o7777,
            keys: BTreeMap::new(),
            empty: Vec::new(),
            tmp_present: false,
        };
        let entries = fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name == TMP_NAME {
                scan.tmp_present = true;
                continue;
            }
            let Some(index) = parse_index(name) else {
                continue;
            };
            let path = entry.path();
            // Like os.path.isfile: follows symlinks, false for dangling ones
            // and for directories.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let content = read_limited(&path)?;
            if content.is_empty() {
                warn!(path = %path.display(), "ignoring empty key found in key repository");
                scan.empty.push(path);
                continue;
            }
            let scanned = Scanned {
                name: name.to_string(),
                path,
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                mode: meta.permissions().mode() & 0o7777,
                fernet: parse_key(&content),
            };
            match scan.keys.get(&index) {
                // Two names for one index ("1" and "01"): keep the canonical one.
                Some(existing) => {
                    warn!(a = %existing.path.display(), b = %scanned.path.display(),
                        "two key files share one index; using the one named `{index}`");
                    if scanned.name == index.to_string() {
                        scan.keys.insert(index, scanned);
                    }
                }
                None => {
                    scan.keys.insert(index, scanned);
                }
            }
        }
        Ok(scan)
    }
}

/// Key-file names Keystone counts. Python's `int()` also accepts `+1`, `-1`,
/// ` 1` and `1_0`; Keystone never writes those, so we take digits only
/// (note `u64::from_str` alone would accept `+1`).
fn parse_index(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Decodes key-file content. Python's base64 decoder is lenient, so files
/// Keystone accepts must work here too: surrounding whitespace (a trailing
/// newline from `echo`/editors) is ignored, and standard-alphabet `+`/`/`
/// (keys made with `head -c32 /dev/urandom | base64`) are read as `-`/`_`.
fn parse_key(content: &[u8]) -> Option<Fernet> {
    let text = std::str::from_utf8(content).ok()?;
    let text: String = text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    Fernet::new(&text)
}

fn read_limited(path: &Path) -> Result<Vec<u8>, KeyError> {
    let mut content = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_LEN).read_to_end(&mut content))
        .map_err(io_err("read", path))?;
    Ok(content)
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "could not remove temporary key file");
        }
    }
}

/// Roles as Keystone uses them: highest index primary, `0` staged unless it
/// is the only key (then it encrypts: the max_active_keys = 1 quirk).
fn role_of(index: u64, highest: u64) -> KeyRole {
    if index == highest {
        KeyRole::Primary
    } else if index == 0 {
        KeyRole::Staged
    } else {
        KeyRole::Secondary
    }
}

fn infos(scan: &Scan) -> Vec<KeyInfo> {
    let highest = scan.keys.last_key_value().map_or(0, |(&i, _)| i);
    scan.keys
        .iter()
        .rev()
        .map(|(&index, s)| KeyInfo {
            index,
            role: role_of(index, highest),
            path: s.path.clone(),
            modified: s.modified,
            valid: s.fernet.is_some(),
            mode: s.mode,
        })
        .collect()
}

/// Keystone only warns on a world-accessible directory; we also mention
/// group access and loose key files, but never refuse to work.
fn warn_permissions(dir: &Path, scan: &Scan) {
    if scan.dir_mode & 0o077 != 0 {
        warn!(dir = %dir.display(), mode = %format!("{:04o}", scan.dir_mode),
            "Fernet key repository is accessible by group or others; it should be mode 0700");
    }
    for key in scan.keys.values() {
        if key.mode & 0o077 != 0 {
            warn!(path = %key.path.display(), mode = %format!("{:04o}", key.mode),
                "Fernet key file is accessible by group or others; it should be mode 0600");
        }
    }
}

/// Other-access is an error (anyone on the host could forge tokens);
/// group-access only a warning, as some deployments share a service group.
fn mode_problem(what: &str, path: &Path, mode: u32, wanted: u32) -> Option<(Severity, String)> {
    let (severity, who) = if mode & 0o007 != 0 {
        (Severity::Error, "other users")
    } else if mode & 0o070 != 0 {
        (Severity::Warning, "its group")
    } else {
        return None;
    };
    Some((
        severity,
        format!(
            "{what} {} is mode {mode:04o}, accessible by {who}; run `chmod {wanted:04o} {}`",
            path.display(),
            path.display()
        ),
    ))
}

fn age(now: SystemTime, then: SystemTime) -> u64 {
    now.duration_since(then).map_or(0, |d| d.as_secs())
}

/// "2d 3h", "1h 30m", "45s": the two largest units, for reading, not parsing.
fn human_duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    for (i, &(size, unit)) in UNITS.iter().enumerate() {
        if secs >= size {
            let mut out = format!("{}{unit}", secs / size);
            if let Some(&(next, next_unit)) = UNITS.get(i + 1) {
                let rest = (secs % size) / next;
                if rest > 0 {
                    out.push_str(&format!(" {rest}{next_unit}"));
                }
            }
            return out;
        }
    }
    "0s".to_string()
}

// ---------------------------------------------------------------------------
// Server-side cache
// ---------------------------------------------------------------------------

/// Cheap summary of the directory used to notice a rotation without reading
/// any key: the directory mtime plus (name, inode, mtime, length) of every
/// integer-named entry. The inode catches a same-size replacement within one
/// mtime tick (every write is a rename of a new file); symlinks are followed,
/// so Kubernetes secret volumes (`0 -> ..data/0`) are tracked too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    dir_mtime: Option<SystemTime>,
    entries: Vec<(OsString, u64, Option<SystemTime>, u64)>,
}

fn fingerprint(dir: &Path) -> io::Result<Fingerprint> {
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

struct Current {
    keys: Option<Arc<Vec<Fernet>>>,
    checked_at: Option<Instant>,
}

#[derive(Default)]
struct ReloadState {
    /// Fingerprint of the directory when `Current::keys` was loaded.
    loaded: Option<Fingerprint>,
    /// Last reload error, so a persistent problem is logged once, not every
    /// recheck.
    last_error: Option<String>,
}

/// The keys a running server uses. Keystone re-reads the directory on every
/// encrypt/decrypt so a rotation by another process takes effect at once; we
/// get the same effect without per-request file reads by checking the
/// directory's fingerprint at most once per `recheck` and reloading only
/// when it changed. A failed reload (a half-written or corrupted file) keeps
/// the last good keys, so a botched rotation never takes the service down.
pub struct KeyRing {
    repo: KeyRepository,
    recheck: Duration,
    current: RwLock<Current>,
    /// Serialises reloads; requests that find it busy use the current keys.
    reload: Mutex<ReloadState>,
}

impl fmt::Debug for KeyRing {
    // Manual: Fernet has no Debug, and key material must never be printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.repo.dir)
            .field("recheck", &self.recheck)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads lazily on the first [`KeyRing::keys`] call.
    pub fn new(repo: KeyRepository, recheck: Duration) -> Self {
        Self {
            repo,
            recheck,
            current: RwLock::new(Current {
                keys: None,
                checked_at: None,
            }),
            reload: Mutex::new(ReloadState::default()),
        }
    }

    /// Loads now, so the server fails at start-up on a missing or empty
    /// repository, as Keystone's fernet provider does.
    pub fn open(repo: KeyRepository, recheck: Duration) -> Result<Self, KeyError> {
        let ring = Self::new(repo, recheck);
        ring.keys()?;
        Ok(ring)
    }

    pub fn repository(&self) -> &KeyRepository {
        &self.repo
    }

    /// Current keys in load order (`[0]` is the primary that encrypts; try
    /// all in order to decrypt). Never empty. Errors only if no good set of
    /// keys was ever loaded.
    pub fn keys(&self) -> Result<Arc<Vec<Fernet>>, KeyError> {
        let cached = {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if let (Some(keys), Some(at)) = (&current.keys, current.checked_at) {
                if at.elapsed() < self.recheck {
                    return Ok(Arc::clone(keys));
                }
            }
            current.keys.clone()
        };
        let mut state = match self.reload.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // Another request is already rechecking: don't queue behind it.
            Err(TryLockError::WouldBlock) => match cached {
                Some(keys) => return Ok(keys),
                None => self.reload.lock().unwrap_or_else(PoisonError::into_inner),
            },
        };
        self.refresh(&mut state)
    }

    fn refresh(&self, state: &mut ReloadState) -> Result<Arc<Vec<Fernet>>, KeyError> {
        let previous = {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            // Another thread may have rechecked while we waited for the lock.
            if let (Some(keys), Some(at)) = (&current.keys, current.checked_at) {
                if at.elapsed() < self.recheck {
                    return Ok(Arc::clone(keys));
                }
            }
            current.keys.clone()
        };
        // Taken before loading: a change during the load only causes one
        // more (harmless) reload at the next check.
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

// ---------------------------------------------------------------------------
// Rotation safety
// ---------------------------------------------------------------------------

/// Smallest `max_active_keys` that keeps every key on disk until the last
/// token it encrypted can no longer be validated, even with `allow_expired`:
///
/// `N = 2 + ceil((expiration + allow_expired_window) / rotation_interval)`
///
/// Why: rotations happen every `R` seconds. A key becomes primary at some
/// rotation `t0` and encrypts until the next one, so its last token is issued
/// just before `t0 + R` and must stay decryptable until
/// `t0 + R + expiration + window`. After each rotation the repository holds
/// the staged key plus `N - 1` others, newest first, and the oldest are
/// purged; the key is the newest non-staged key at `t0`, the `(j+1)`-th after
/// `j` more rotations, so it is purged by rotation `N - 1` after `t0`, at
/// `t0 + (N - 1)·R`. We need `(N - 1)·R >= R + expiration + window`, i.e.
/// `(N - 2)·R >= expiration + window`: the primary interval and the staged
/// key each take one slot, and the remaining `N - 2` slots must span
/// `expiration + window`. The simulation test checks it is exactly minimal.
///
/// Keystone's defaults (1 h + 48 h, max_active_keys = 3) are therefore only
/// safe when rotating at most every 49 h; daily rotation needs 5.
/// `rotation_interval_secs = 0` (rotate at any moment) has no safe value and
/// yields `usize::MAX`. The interval is the shortest time between two
/// rotations, including manual ones.
pub fn required_max_active_keys(
    expiration_secs: u64,
    allow_expired_window_secs: u64,
    rotation_interval_secs: u64,
) -> usize {
    if rotation_interval_secs == 0 {
        return usize::MAX;
    }
    let span = expiration_secs.saturating_add(allow_expired_window_secs);
    let rotations = span.div_ceil(rotation_interval_secs);
    usize::try_from(rotations)
        .unwrap_or(usize::MAX)
        .saturating_add(2)
}

/// Configured `max_active_keys` against [`required_max_active_keys`].
/// All durations are in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyCheck {
    pub required: usize,
    pub configured: usize,
    pub rotation_interval: u64,
    pub expiration: u64,
    pub window: u64,
}

impl SafetyCheck {
    pub fn new(configured: usize, expiration: u64, window: u64, rotation_interval: u64) -> Self {
        Self {
            required: required_max_active_keys(expiration, window, rotation_interval),
            configured,
            rotation_interval,
            expiration,
            window,
        }
    }

    pub fn is_safe(&self) -> bool {
        self.rotation_interval > 0 && self.configured >= self.required
    }
}

impl fmt::Display for SafetyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rotation_interval == 0 {
            return f.write_str(
                "the rotation interval must be greater than zero: if keys can be rotated at any \
                 moment, no max_active_keys value keeps them long enough",
            );
        }
        let span = self.expiration.saturating_add(self.window);
        let (e, w, r) = (
            human_duration(self.expiration),
            human_duration(self.window),
            human_duration(self.rotation_interval),
        );
        if self.is_safe() {
            let kept =
                (self.configured.saturating_sub(2) as u64).saturating_mul(self.rotation_interval);
            write!(
                f,
                "max_active_keys = {} is enough (at least {} needed): rotating every {r}, a key \
                 stays {} after it stops being primary, covering token expiration {e} + \
                 allow_expired_window {w}.",
                self.configured,
                self.required,
                human_duration(kept),
            )
        } else {
            write!(
                f,
                "set max_active_keys to at least {} (it is {}): a key must stay for expiration \
                 {e} + allow_expired_window {w} = {} after it stops being primary, which is \
                 {} rotations every {r}, plus one slot for the primary and one for the staged \
                 key; otherwise services validating expired tokens with allow_expired get 404s.",
                self.required,
                self.configured,
                human_duration(span),
                self.required.saturating_sub(2),
            )
        }
    }
}

/// How serious a [`Problem`] is: errors make the report unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// Something `fernet check` found wrong besides the key count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
}

/// Output of `keystone-rs fernet check`; `Display` renders it for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub dir_mode: u32,
    /// In load order, as [`KeyRepository::list`].
    pub keys: Vec<KeyInfo>,
    pub now: SystemTime,
    pub safety: SafetyCheck,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// False if max_active_keys is too low or any problem is an error; the
    /// CLI should exit non-zero then.
    pub fn is_safe(&self) -> bool {
        self.safety.is_safe() && !self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Fernet key repository {} (mode {:04o})",
            self.dir.display(),
            self.dir_mode
        )?;
        writeln!(
            f,
            "{:>8}  {:<9}  {:>8}  {:<4}  created",
            "key", "role", "age", "mode"
        )?;
        for key in &self.keys {
            let created =
                chrono::DateTime::<chrono::Utc>::from(key.modified).format("%Y-%m-%dT%H:%M:%SZ");
            writeln!(
                f,
                "{:>8}  {:<9}  {:>8}  {:04o}  {created}{}",
                key.index,
                key.role.to_string(),
                human_duration(age(self.now, key.modified)),
                key.mode,
                if key.valid { "" } else { "  INVALID" },
            )?;
        }
        let s = &self.safety;
        let required = if s.required == usize::MAX {
            "none is enough".to_string()
        } else {
            s.required.to_string()
        };
        writeln!(
            f,
            "max_active_keys: configured {}, required {required} (rotation every {})",
            s.configured,
            human_duration(s.rotation_interval)
        )?;
        writeln!(
            f,
            "Each key must outlive the last token it encrypted by {}: token expiration {} + \
             allow_expired_window {}.",
            human_duration(s.expiration.saturating_add(s.window)),
            human_duration(s.expiration),
            human_duration(s.window)
        )?;
        let mut errors = 0;
        let mut warnings = 0;
        for p in &self.problems {
            match p.severity {
                Severity::Error => {
                    errors += 1;
                    writeln!(f, "ERROR: {}", p.message)?;
                }
                Severity::Warning => {
                    warnings += 1;
                    writeln!(f, "WARNING: {}", p.message)?;
                }
            }
        }
        if !s.is_safe() {
            write!(f, "UNSAFE: {s}")?;
            if errors > 0 {
                write!(f, " Also fix the {errors} ERROR line(s) above.")?;
            }
        } else if errors > 0 {
            write!(
                f,
                "UNSAFE: fix the {errors} ERROR line(s) above (max_active_keys itself is enough)."
            )?;
        } else {
            write!(f, "OK: {s}")?;
            if warnings > 0 {
                write!(f, " ({warnings} warning(s) above)")?;
            }
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::fs::Permissions;

    fn repo_in(tmp: &tempfile::TempDir, max: usize) -> KeyRepository {
        KeyRepository::new(tmp.path().join("keys"), max)
    }

    fn indexes(repo: &KeyRepository) -> Vec<u64> {
        let mut v: Vec<u64> = repo.list().unwrap().iter().map(|k| k.index).collect();
        v.sort_unstable();
        v
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn read(repo: &KeyRepository, name: &str) -> String {
        fs::read_to_string(repo.dir().join(name)).unwrap()
    }

    fn write_file(repo: &KeyRepository, name: &str, content: &[u8]) {
        fs::write(repo.dir().join(name), content).unwrap();
    }

    fn dir_names(repo: &KeyRepository) -> BTreeSet<String> {
        fs::read_dir(repo.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn setup_creates_staged_and_primary_with_modes_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(tmp.path().join("etc/keystone/fernet-keys"), 3);
        let outcome = repo.setup().unwrap();
        let SetupOutcome::Initialized {
            created_directory,
            rotation,
        } = outcome
        else {
            panic!("expected Initialized, got {outcome:?}");
        };
        assert!(created_directory);
        assert_eq!(rotation.previous_primary, 0);
        assert_eq!(rotation.new_primary, 1);
        assert!(rotation.removed.is_empty());
        assert_eq!(rotation.remaining, vec![0, 1]);
        assert_eq!(
            dir_names(&repo),
            BTreeSet::from(["0".to_string(), "1".to_string()])
        );
        assert_eq!(mode_of(repo.dir()), 0o700);
        for name in ["0", "1"] {
            assert_eq!(mode_of(&repo.dir().join(name)), 0o600);
            let key = read(&repo, name);
            assert_eq!(key.len(), 44, "{key:?}");
            assert!(key.ends_with('='));
            assert!(key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)));
        }
        let list = repo.list().unwrap();
        assert_eq!(list[0].index, 1);
        assert_eq!(list[0].role, KeyRole::Primary);
        assert_eq!(list[1].index, 0);
        assert_eq!(list[1].role, KeyRole::Staged);
        assert!(list.iter().all(|k| k.valid && k.mode == 0o600));

        let before = (read(&repo, "0"), read(&repo, "1"));
        assert_eq!(repo.setup().unwrap(), SetupOutcome::AlreadyInitialized);
        assert_eq!(before, (read(&repo, "0"), read(&repo, "1")));
    }

    #[test]
    fn setup_leaves_an_existing_directory_mode_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        fs::create_dir(repo.dir()).unwrap();
        fs::set_permissions(repo.dir(), Permissions::from_mode(0o750)).unwrap();
        let outcome = repo.setup().unwrap();
        assert!(matches!(
            outcome,
            SetupOutcome::Initialized {
                created_directory: false,
                ..
            }
        ));
        assert_eq!(mode_of(repo.dir()), 0o750);
        assert_eq!(indexes(&repo), vec![0, 1]);
    }

    #[test]
    fn setup_on_a_file_fails_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("keys");
        fs::write(&path, b"x").unwrap();
        let err = KeyRepository::new(&path, 3).setup().unwrap_err();
        assert!(matches!(err, KeyError::NotADirectory { ref path } if path.ends_with("keys")));
    }

    #[test]
    fn rotate_sequence_matches_keystone_with_max_three() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        assert_eq!(indexes(&repo), vec![0, 1]);

        let staged = read(&repo, "0");
        let out = repo.rotate().unwrap();
        assert_eq!(
            out,
            RotateOutcome {
                previous_primary: 1,
                new_primary: 2,
                removed: vec![],
                remaining: vec![0, 1, 2]
            }
        );
        // The staged key is promoted, not regenerated.
        assert_eq!(read(&repo, "2"), staged);
        assert_ne!(read(&repo, "0"), staged);

        let staged = read(&repo, "0");
        let out = repo.rotate().unwrap();
        assert_eq!(out.new_primary, 3);
        assert_eq!(out.removed, vec![1]);
        assert_eq!(out.remaining, vec![0, 2, 3]);
        assert_eq!(indexes(&repo), vec![0, 2, 3]);
        assert_eq!(read(&repo, "3"), staged);
        assert!(!repo.dir().join(TMP_NAME).exists());
        for name in ["0", "2", "3"] {
            assert_eq!(mode_of(&repo.dir().join(name)), 0o600);
        }

        let out = repo.rotate().unwrap();
        assert_eq!(out.removed, vec![2]);
        assert_eq!(indexes(&repo), vec![0, 3, 4]);
    }

    #[test]
    fn purge_removes_several_lowest_when_max_shrinks() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 6);
        repo.setup().unwrap();
        for _ in 0..4 {
            repo.rotate().unwrap();
        }
        assert_eq!(indexes(&repo), vec![0, 1, 2, 3, 4, 5]);
        let out = KeyRepository::new(repo.dir(), 3).rotate().unwrap();
        assert_eq!(out.removed, vec![1, 2, 3, 4]);
        assert_eq!(indexes(&repo), vec![0, 5, 6]);
    }

    #[test]
    fn max_active_keys_one_keeps_only_the_staged_key_as_primary() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 1);
        let SetupOutcome::Initialized { rotation, .. } = repo.setup().unwrap() else {
            panic!("expected Initialized");
        };
        assert_eq!(rotation.new_primary, 1);
        assert_eq!(rotation.removed, vec![1]);
        assert_eq!(rotation.remaining, vec![0]);
        let list = repo.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].index, 0);
        assert_eq!(list[0].role, KeyRole::Primary);
        assert_eq!(repo.load().unwrap().len(), 1);

        let before = read(&repo, "0");
        let out = repo.rotate().unwrap();
        assert_eq!((out.new_primary, out.removed), (1, vec![1]));
        assert_eq!(dir_names(&repo), BTreeSet::from(["0".to_string()]));
        assert_ne!(read(&repo, "0"), before);
    }

    #[test]
    fn max_active_keys_zero_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 0);
        assert!(matches!(
            repo.setup(),
            Err(KeyError::InvalidMaxActiveKeys(0))
        ));
        assert!(!repo.dir().exists());
    }

    #[test]
    fn rotate_refuses_missing_empty_or_unstaged_repositories() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        assert!(matches!(
            repo.rotate(),
            Err(KeyError::RepositoryMissing { .. })
        ));
        assert!(matches!(
            repo.load(),
            Err(KeyError::RepositoryMissing { .. })
        ));

        fs::create_dir(repo.dir()).unwrap();
        let err = repo.rotate().unwrap_err();
        assert!(matches!(err, KeyError::Empty { .. }), "{err}");
        assert!(err.to_string().contains(&repo.dir().display().to_string()));
        assert!(matches!(repo.load(), Err(KeyError::Empty { .. })));

        write_file(&repo, "1", Fernet::generate_key().as_bytes());
        write_file(&repo, "2", Fernet::generate_key().as_bytes());
        let err = repo.rotate().unwrap_err();
        assert!(matches!(err, KeyError::NoStagedKey { .. }), "{err}");
        assert_eq!(
            dir_names(&repo),
            BTreeSet::from(["1".to_string(), "2".to_string()])
        );

        // setup repairs it as in Keystone: new 0, one rotation.
        repo.setup().unwrap();
        assert_eq!(indexes(&repo), vec![0, 2, 3]);
    }

    #[test]
    fn rotate_refuses_an_invalid_staged_key() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        write_file(&repo, "0", b"garbage");
        let err = repo.rotate().unwrap_err();
        assert!(matches!(err, KeyError::InvalidKey { ref path } if path.ends_with("0")));
        assert_eq!(indexes(&repo), vec![0, 1]);
    }

    #[test]
    fn failed_rotation_removes_the_temporary_key_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let before = (read(&repo, "0"), read(&repo, "1"));
        // A directory where the new primary must go makes the promotion fail.
        fs::create_dir(repo.dir().join("2")).unwrap();
        fs::write(repo.dir().join("2/x"), b"x").unwrap();
        let err = repo.rotate().unwrap_err();
        assert!(
            matches!(err, KeyError::Io { ref path, .. } if path.ends_with("2")),
            "{err}"
        );
        assert!(!repo.dir().join(TMP_NAME).exists());
        assert_eq!(before, (read(&repo, "0"), read(&repo, "1")));
    }

    #[test]
    fn stale_temporary_key_is_replaced_with_a_private_one() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        write_file(&repo, TMP_NAME, b"stale");
        fs::set_permissions(repo.dir().join(TMP_NAME), Permissions::from_mode(0o644)).unwrap();
        repo.rotate().unwrap();
        assert!(!repo.dir().join(TMP_NAME).exists());
        assert_eq!(mode_of(&repo.dir().join("0")), 0o600);
        assert_eq!(read(&repo, "0").len(), 44);
        assert_eq!(repo.load().unwrap().len(), 3);
    }

    #[test]
    fn concurrent_rotations_are_serialised() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 30);
        repo.setup().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let repo = repo.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        repo.rotate().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(indexes(&repo), (0..=21).collect::<Vec<u64>>());
        assert!(!repo.dir().join(TMP_NAME).exists());
        assert_eq!(repo.load().unwrap().len(), 22);
    }

    #[test]
    fn load_returns_keys_in_descending_index_order() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 5);
        repo.setup().unwrap();
        repo.rotate().unwrap();
        repo.rotate().unwrap();
        let list = repo.list().unwrap();
        let order: Vec<u64> = list.iter().map(|k| k.index).collect();
        assert_eq!(order, vec![3, 2, 1, 0]);
        let roles: Vec<KeyRole> = list.iter().map(|k| k.role).collect();
        assert_eq!(
            roles,
            vec![
                KeyRole::Primary,
                KeyRole::Secondary,
                KeyRole::Secondary,
                KeyRole::Staged
            ]
        );
        let keys = repo.load().unwrap();
        assert_eq!(keys.len(), 4);
        for (info, key) in list.iter().zip(keys.iter()) {
            let from_file = Fernet::new(&fs::read_to_string(&info.path).unwrap()).unwrap();
            let token = key.encrypt(b"payload");
            assert_eq!(from_file.decrypt(&token).unwrap(), b"payload");
        }
    }

    #[test]
    fn only_integer_named_non_empty_regular_files_are_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let key = Fernet::generate_key();
        for name in ["README", "1a", "+1", "-1", " 1", "1_0", "5.bak", TMP_NAME] {
            write_file(&repo, name, key.as_bytes());
        }
        write_file(&repo, "9", b"");
        fs::create_dir(repo.dir().join("7")).unwrap();
        std::os::unix::fs::symlink(repo.dir().join("missing"), repo.dir().join("8")).unwrap();
        assert_eq!(indexes(&repo), vec![0, 1]);
        assert_eq!(repo.load().unwrap().len(), 2);
        assert_eq!(repo.list().unwrap()[0].role, KeyRole::Primary);
        // A symlink to a real key counts, like os.path.isfile.
        std::os::unix::fs::symlink(repo.dir().join("1"), repo.dir().join("4")).unwrap();
        assert_eq!(indexes(&repo), vec![0, 1, 4]);
    }

    #[test]
    fn python_tolerated_key_spellings_are_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let key = Fernet::generate_key();
        write_file(&repo, "5", format!("{key}\n").as_bytes());
        let standard: String = key
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        write_file(&repo, "6", format!(" {standard}\r\n").as_bytes());
        let keys = repo.load().unwrap();
        assert_eq!(keys.len(), 4);
        let token = Fernet::new(&key).unwrap().encrypt(b"x");
        assert_eq!(keys[0].decrypt(&token).unwrap(), b"x");
        assert_eq!(keys[1].decrypt(&token).unwrap(), b"x");
    }

    #[test]
    fn bad_key_files_are_errors_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let short = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="; // 31 bytes
        for content in [
            b"not a key".as_slice(),
            short.as_bytes(),
            &[0xff, 0xfe, 0x00],
            &[b'A'; 5000],
        ] {
            write_file(&repo, "4", content);
            let err = repo.load().err().unwrap();
            assert!(matches!(err, KeyError::InvalidKey { ref path } if path.ends_with("4")));
            assert!(err.to_string().contains("/4"), "{err}");
            let list = repo.list().unwrap();
            assert_eq!(list[0].index, 4);
            assert!(!list[0].valid);
        }
    }

    #[test]
    fn keyring_picks_up_a_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let ring = KeyRing::open(repo.clone(), Duration::ZERO).unwrap();
        let before = ring.keys().unwrap();
        assert_eq!(before.len(), 2);
        // Unchanged directory: the very same Arc, no reload.
        assert!(Arc::ptr_eq(&before, &ring.keys().unwrap()));
        let token = before[0].encrypt(b"issued before rotation");

        repo.rotate().unwrap();
        let after = ring.keys().unwrap();
        assert_eq!(after.len(), 3);
        assert!(after[0].decrypt(&token).is_err(), "new primary must differ");
        assert!(after.iter().any(|k| k.decrypt(&token).is_ok()));
        assert!(Arc::ptr_eq(&after, &ring.keys().unwrap()));
    }

    #[test]
    fn keyring_rechecks_at_most_once_per_interval() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let ring = KeyRing::open(repo.clone(), Duration::from_secs(3600)).unwrap();
        let before = ring.keys().unwrap();
        repo.rotate().unwrap();
        assert!(Arc::ptr_eq(&before, &ring.keys().unwrap()));
    }

    #[test]
    fn keyring_keeps_serving_the_last_good_keys_when_a_file_is_corrupted() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let ring = KeyRing::new(repo.clone(), Duration::ZERO);
        let good = ring.keys().unwrap();
        let token = good[0].encrypt(b"t");

        // Half-written new primary and a truncated staged key.
        write_file(&repo, "2", b"gAAAAAB");
        write_file(&repo, "0", b"abc");
        assert!(repo.load().is_err());
        let served = ring.keys().unwrap();
        assert!(Arc::ptr_eq(&good, &served));
        assert_eq!(served[0].decrypt(&token).unwrap(), b"t");
        assert!(Arc::ptr_eq(&good, &ring.keys().unwrap()));

        // Once fixed, the new state is picked up.
        write_file(&repo, "2", Fernet::generate_key().as_bytes());
        write_file(&repo, "0", Fernet::generate_key().as_bytes());
        let fixed = ring.keys().unwrap();
        assert!(!Arc::ptr_eq(&good, &fixed));
        assert_eq!(fixed.len(), 3);

        // Directory removed: still the last good keys.
        fs::remove_dir_all(repo.dir()).unwrap();
        assert!(Arc::ptr_eq(&fixed, &ring.keys().unwrap()));
    }

    #[test]
    fn keyring_without_good_keys_reports_the_error_until_setup() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        assert!(matches!(
            KeyRing::open(repo.clone(), Duration::ZERO),
            Err(KeyError::RepositoryMissing { .. })
        ));
        let ring = KeyRing::new(repo.clone(), Duration::from_secs(3600));
        assert!(ring.keys().is_err());
        repo.setup().unwrap();
        assert_eq!(ring.keys().unwrap().len(), 2);
        assert!(format!("{ring:?}").contains("KeyRing"));
    }

    #[test]
    fn required_max_active_keys_examples() {
        // Keystone defaults: 1 h tokens, 48 h window.
        assert_eq!(required_max_active_keys(3600, 172_800, 176_400), 3);
        assert_eq!(required_max_active_keys(3600, 172_800, 176_399), 4);
        assert_eq!(required_max_active_keys(3600, 172_800, 86_400), 5);
        assert_eq!(required_max_active_keys(3600, 172_800, 3600), 51);
        assert_eq!(required_max_active_keys(3600, 0, 3600), 3);
        assert_eq!(required_max_active_keys(3601, 0, 3600), 4);
        assert_eq!(required_max_active_keys(0, 0, 3600), 2);
        assert_eq!(required_max_active_keys(3600, 0, 0), usize::MAX);
        assert_eq!(required_max_active_keys(u64::MAX, u64::MAX, 1), usize::MAX);
    }

    /// Runs rotations every `r` seconds against a real repository with
    /// `max_active` keys, issuing tokens with the primary at the start and at
    /// the last millisecond of every interval, and checks each token still
    /// decrypts with the loaded keys at every rotation before
    /// `expires_at + window`. Returns false as soon as one loses its key.
    fn simulate(e: u64, w: u64, r: u64, max_active: usize) -> bool {
        let tmp = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(tmp.path().join("keys"), max_active);
        repo.setup().unwrap();
        let (e, w, r) = (e * 1000, w * 1000, r * 1000); // milliseconds
        let issuing_intervals = max_active as u64 + 2;
        let total = issuing_intervals + (e + w).div_ceil(r) + 2;
        // (token, key index, must decrypt while now < needed_until)
        let mut tokens: Vec<(String, u64, u64)> = Vec::new();
        for k in 0..total {
            let start = k * r;
            if k < issuing_intervals {
                let list = repo.list().unwrap();
                let primary = repo.load().unwrap();
                for at in [start, start + r - 1] {
                    tokens.push((primary[0].encrypt(b"tok"), list[0].index, at + e + w));
                }
            }
            let now = start + r; // rotation time
            repo.rotate().unwrap();
            let list = repo.list().unwrap();
            let keys = repo.load().unwrap();
            for (token, index, needed_until) in &tokens {
                if now >= *needed_until {
                    continue;
                }
                let key = list
                    .iter()
                    .zip(keys.iter())
                    .find(|(i, _)| i.index == *index);
                match key {
                    Some((_, key)) => assert_eq!(key.decrypt(token).unwrap(), b"tok"),
                    None => return false,
                }
            }
        }
        true
    }

    #[test]
    fn safety_formula_is_exactly_the_minimum() {
        for (e, w, r) in [
            (3600, 0, 3600),
            (3601, 0, 3600),
            (3600, 7200, 3600),
            (100, 50, 40),
            (3600, 172_800, 86_400),
            (3600, 172_800, 3600),
        ] {
            let n = required_max_active_keys(e, w, r);
            assert!(simulate(e, w, r, n), "N={n} must be safe for {e}/{w}/{r}");
            assert!(
                !simulate(e, w, r, n - 1),
                "N-1={} must lose a key for {e}/{w}/{r}",
                n - 1
            );
        }
    }

    #[test]
    fn safety_check_display_explains_the_value() {
        let unsafe_ = SafetyCheck::new(3, 3600, 172_800, 3600);
        assert!(!unsafe_.is_safe());
        let text = unsafe_.to_string();
        assert!(text.contains("at least 51"), "{text}");
        assert!(text.contains("allow_expired_window"), "{text}");
        let safe = SafetyCheck::new(5, 3600, 172_800, 86_400);
        assert!(safe.is_safe());
        assert!(safe.to_string().contains("is enough"), "{safe}");
        assert!(!SafetyCheck::new(100, 1, 1, 0).is_safe());
    }

    #[test]
    fn check_report_flags_an_unsafe_configuration() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 3);
        repo.setup().unwrap();
        let now = SystemTime::now();
        let report = repo.check_report(3600, 172_800, 3600, now).unwrap();
        assert!(!report.is_safe());
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let text = report.to_string();
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("UNSAFE:"), "{text}");
        assert!(last.contains("51"), "{text}");
        assert!(text.contains("configured 3, required 51"), "{text}");
        assert!(text.contains("primary"), "{text}");
        assert!(text.contains("staged"), "{text}");
        assert!(text.contains("0600"), "{text}");
        assert!(text.contains("2d 1h"), "{text}");

        let safe = KeyRepository::new(repo.dir(), 5)
            .check_report(3600, 172_800, 86_400, now)
            .unwrap();
        assert!(safe.is_safe(), "{safe}");
        assert!(safe.to_string().lines().last().unwrap().starts_with("OK:"));
    }

    #[test]
    fn check_report_flags_permissions_and_bad_files() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 5);
        repo.setup().unwrap();
        fs::set_permissions(repo.dir(), Permissions::from_mode(0o755)).unwrap();
        let now = SystemTime::now();
        let report = repo.check_report(3600, 172_800, 86_400, now).unwrap();
        assert!(report.safety.is_safe());
        assert!(!report.is_safe());
        let text = report.to_string();
        assert!(text.contains("ERROR: directory"), "{text}");
        assert!(text.contains("0755"), "{text}");
        assert!(
            text.lines().last().unwrap().starts_with("UNSAFE:"),
            "{text}"
        );

        fs::set_permissions(repo.dir(), Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(repo.dir().join("1"), Permissions::from_mode(0o640)).unwrap();
        let report = repo.check_report(3600, 172_800, 86_400, now).unwrap();
        assert!(report.is_safe(), "{report}");
        assert!(report.to_string().contains("WARNING: key file"));

        fs::remove_file(repo.dir().join("0")).unwrap();
        write_file(&repo, "3", b"junk");
        write_file(&repo, "4", b"");
        let report = repo.check_report(3600, 172_800, 86_400, now).unwrap();
        assert!(!report.is_safe());
        let text = report.to_string();
        assert!(text.contains("no staged key 0"), "{text}");
        assert!(text.contains("INVALID"), "{text}");
        assert!(text.contains("/3 is not a valid Fernet key"), "{text}");
        assert!(text.contains("/4 is empty"), "{text}");
    }

    #[test]
    fn check_report_warns_when_rotation_seems_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = repo_in(&tmp, 5);
        repo.setup().unwrap();
        let later = SystemTime::now() + Duration::from_secs(3 * 86_400);
        let report = repo.check_report(3600, 172_800, 86_400, later).unwrap();
        assert!(report.is_safe());
        let text = report.to_string();
        assert!(text.contains("the last rotation was 3d"), "{text}");
        assert!(text.lines().last().unwrap().contains("1 warning"), "{text}");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("012"), Some(12));
        assert_eq!(parse_index("+1"), None);
        assert_eq!(parse_index(""), None);
        assert_eq!(parse_index("99999999999999999999999"), None);
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(5400), "1h 30m");
        assert_eq!(human_duration(172_800), "2d");
        assert_eq!(human_duration(90_061), "1d 1h");
    }
}
