//! Fernet tokens: the key repository, the Keystone payload codec, issue and validation.

pub mod codec;
pub mod keys;
pub mod payload;
pub mod provider;
