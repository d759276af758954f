//! The key repository on disk: Keystone's `fernet_utils.py` algorithms (setup,
//! rotate, list, load), file for file.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fernet::Fernet;
use tracing::{debug, info, warn};

/// Name Keystone writes a new key to before renaming it to `0`.
pub(super) const TMP_NAME: &str = "0.tmp";
/// Name of the staged key.
pub(super) const STAGED_NAME: &str = "0";
/// A real key file is 44 bytes; anything much larger is certainly not a key,
/// so we never read more than this (a stray large file must not cost memory).
pub(super) const MAX_KEY_FILE_LEN: u64 = 1024;

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
    #[error(
        "the key-encryption key {} does not exist; run `keystone-rs fernet setup` on one node and copy the file to every node",
        path.display()
    )]
    KekMissing { path: PathBuf },
    #[error(
        "{} does not contain a valid key-encryption key (a Fernet key: URL-safe base64 of exactly 32 bytes)",
        path.display()
    )]
    KekInvalid { path: PathBuf },
    #[error(
        "Fernet key {idx} in the database cannot be decrypted with the key-encryption key {}: every node needs the same file",
        path.display()
    )]
    KekMismatch { idx: u64, path: PathBuf },
    #[error("no Fernet keys in the database; run `keystone-rs fernet setup` (or `fernet import --from DIR`)")]
    DatabaseEmpty,
    #[error("the Fernet keys in the database have no staged key 0, so they cannot be rotated")]
    DatabaseNoStagedKey,
    #[error("the Fernet keys could not be confirmed against the database for {secs} s")]
    Stale { secs: u64 },
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Builds a `map_err` closure for an I/O failure on `path`.
pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyError {
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
    pub(super) dir: PathBuf,
    pub(super) max_active_keys: usize,
}

/// One integer-named, non-empty key file found by a scan.
pub(super) struct Scanned {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) modified: SystemTime,
    pub(super) mode: u32,
    pub(super) fernet: Option<Fernet>,
}

/// Everything a directory scan found, including what Keystone ignores but
/// `fernet check` should mention.
pub(super) struct Scan {
    pub(super) dir_mode: u32,
    /// Ascending by index.
    pub(super) keys: BTreeMap<u64, Scanned>,
    /// Integer-named empty files (Keystone skips them with a warning).
    pub(super) empty: Vec<PathBuf>,
    /// A leftover `0.tmp` from an interrupted key write.
    pub(super) tmp_present: bool,
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

    /// Every key's text, ascending by index, for `fernet import`; fails like `load`
    /// on an empty repository or an invalid key.
    pub fn read_keys(&self) -> Result<Vec<KeyText>, KeyError> {
        let scan = self.scan()?;
        if scan.keys.is_empty() {
            return Err(KeyError::Empty {
                path: self.dir.clone(),
            });
        }
        let mut out = Vec::with_capacity(scan.keys.len());
        for (index, key) in scan.keys {
            let text = match (&key.fernet, normalize_key(&read_limited(&key.path)?)) {
                (Some(_), Some(text)) => text,
                _ => return Err(KeyError::InvalidKey { path: key.path }),
            };
            out.push(KeyText {
                index,
                key: text,
                modified: key.modified,
            });
        }
        Ok(out)
    }

    /// Writes keys as Keystone's files (each through a temporary file, mode 0600,
    /// fsync'd), creating the directory (0700) if missing. Refuses a directory that
    /// already holds keys: `fernet export` never mixes two key sets.
    pub fn write_keys(&self, keys: &[(u64, String)]) -> Result<(), KeyError> {
        self.create_dir()?;
        let _lock = self.lock();
        if !self.scan()?.keys.is_empty() {
            return Err(KeyError::Io {
                op: "export into",
                path: self.dir.clone(),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the directory already holds Fernet keys; export into an empty directory",
                ),
            });
        }
        for (index, key) in keys {
            let path = self.dir.join(index.to_string());
            let tmp = self.dir.join(format!("{index}.tmp"));
            remove_quietly(&tmp);
            let written = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(key.as_bytes()).and_then(|()| f.sync_all()));
            if let Err(source) = written {
                remove_quietly(&tmp);
                return Err(KeyError::Io {
                    op: "write",
                    path: tmp,
                    source,
                });
            }
            fs::rename(&tmp, &path).map_err(io_err("rename key to", &path))?;
        }
        self.sync_dir()
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
    pub(super) fn scan(&self) -> Result<Scan, KeyError> {
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
pub(super) fn parse_index(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Decodes key-file content. Python's base64 decoder is lenient, so files
/// Keystone accepts must work here too: surrounding whitespace (a trailing
/// newline from `echo`/editors) is ignored, and standard-alphabet `+`/`/`
/// (keys made with `head -c32 /dev/urandom | base64`) are read as `-`/`_`.
pub(super) fn parse_key(content: &[u8]) -> Option<Fernet> {
    Fernet::new(&normalize_key(content)?)
}

/// Key-file content as the URL-safe base64 text `Fernet::new` takes (see `parse_key`);
/// None if it is not text.
pub(super) fn normalize_key(content: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(content).ok()?;
    Some(
        text.trim_matches(|c: char| c.is_ascii_whitespace())
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                other => other,
            })
            .collect(),
    )
}

/// A key's text and when its file was written, for `fernet import`. Key material:
/// never logged.
pub struct KeyText {
    pub index: u64,
    pub key: String,
    pub modified: SystemTime,
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyText")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

pub(super) fn read_limited(path: &Path) -> Result<Vec<u8>, KeyError> {
    let mut content = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_LEN).read_to_end(&mut content))
        .map_err(io_err("read", path))?;
    Ok(content)
}

pub(super) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "could not remove temporary key file");
        }
    }
}

/// Roles as Keystone uses them: highest index primary, `0` staged unless it
/// is the only key (then it encrypts: the max_active_keys = 1 quirk).
pub(super) fn role_of(index: u64, highest: u64) -> KeyRole {
    if index == highest {
        KeyRole::Primary
    } else if index == 0 {
        KeyRole::Staged
    } else {
        KeyRole::Secondary
    }
}

pub(super) fn infos(scan: &Scan) -> Vec<KeyInfo> {
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
pub(super) fn warn_permissions(dir: &Path, scan: &Scan) {
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
