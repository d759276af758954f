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

mod check;
mod database;
mod kek;
mod repository;
mod ring;
#[cfg(test)]
mod tests;

pub use check::*;
pub use database::*;
pub use kek::*;
pub use repository::*;
pub use ring::*;

use std::sync::Arc;

use fernet::Fernet;

/// Where a server's token keys come from: `[fernet_tokens] key_store`.
// One per server, behind an Arc: the size difference costs nothing, a Box would cost
// an indirection on every token.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TokenKeys {
    /// Keystone's key repository directory, watched.
    File(KeyRing),
    /// The shared database, refreshed in the background.
    Database(Arc<SharedKeyRing>),
}

impl TokenKeys {
    /// The keys to use now, primary first; never a database query on the fast path.
    pub async fn current(&self) -> Result<Arc<Vec<Fernet>>, KeyError> {
        match self {
            TokenKeys::File(ring) => ring.keys(),
            TokenKeys::Database(ring) => ring.keys().await,
        }
    }

    /// After a token failed to decrypt: a newer set if one may exist (a database
    /// ring not confirmed within its freshness limit, say after the process was
    /// paused mid-request), else None.
    pub async fn newer_than(&self, used: &Arc<Vec<Fernet>>) -> Option<Arc<Vec<Fernet>>> {
        match self {
            TokenKeys::File(_) => None,
            TokenKeys::Database(ring) => {
                let keys = ring.keys().await.ok()?;
                (!Arc::ptr_eq(&keys, used)).then_some(keys)
            }
        }
    }
}
