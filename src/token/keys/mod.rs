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
mod repository;
mod ring;
#[cfg(test)]
mod tests;

pub use check::*;
pub use repository::*;
pub use ring::*;
