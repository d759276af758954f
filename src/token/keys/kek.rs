//! The key-encryption key: Fernet keys kept in the database are encrypted with it,
//! so a dump of the database alone cannot forge a token. Every node reads the same
//! file (`[fernet_tokens] key_encryption_key_file`); `keystone-rs fernet setup`
//! creates it when missing.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fernet::Fernet;
use tracing::warn;

use super::repository::{io_err, normalize_key, read_limited, KeyError};

/// A Fernet key used only to encrypt other Fernet keys.
pub struct KeyEncryptionKey {
    fernet: Fernet,
    path: PathBuf,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// Reads the file: 44 characters of URL-safe base64 (surrounding whitespace is
    /// ignored, as for key files). Warns when group or others can read it.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyError::KekMissing {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(KeyError::Io {
                    op: "read",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if meta.permissions().mode() & 0o077 != 0 {
            warn!(path = %path.display(), "the key-encryption key is readable by group or others; it should be mode 0600");
        }
        let content = read_limited(path)?;
        let fernet = normalize_key(&content)
            .and_then(|k| Fernet::new(&k))
            .ok_or_else(|| KeyError::KekInvalid {
                path: path.to_path_buf(),
            })?;
        Ok(Self {
            fernet,
            path: path.to_path_buf(),
        })
    }

    /// Writes a new key to `path` (mode 0600, its directory 0700 if created) unless
    /// the file exists; returns whether it was created.
    pub fn create_if_missing(path: &Path) -> Result<bool, KeyError> {
        if path.exists() {
            return Ok(false);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(io_err("create directory", parent))?;
            }
        }
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            // Another node's setup won the race: keep theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => {
                return Err(KeyError::Io {
                    op: "create",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let written = file
            .write_all(Fernet::generate_key().as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(source) = written {
            drop(file);
            let _ = fs::remove_file(path);
            return Err(KeyError::Io {
                op: "write",
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encrypts a key (its base64 text) for storage.
    pub fn seal(&self, key: &str) -> String {
        self.fernet.encrypt(key.as_bytes())
    }

    /// Decrypts a stored key; a different key-encryption key is a clear error, not
    /// a silent empty key set.
    pub fn open(&self, idx: u64, material: &str) -> Result<String, KeyError> {
        let mismatch = || KeyError::KekMismatch {
            idx,
            path: self.path.clone(),
        };
        let plain = self.fernet.decrypt(material).map_err(|_| mismatch())?;
        let key = String::from_utf8(plain).map_err(|_| mismatch())?;
        Fernet::new(&key).ok_or_else(mismatch)?;
        Ok(key)
    }
}
