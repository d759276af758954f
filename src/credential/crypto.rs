//! Credential blobs at rest, as Keystone's fernet credential provider
//! (`keystone/credential/providers/fernet/core.py`) keeps them: a `MultiFernet` over
//! the credential key repository (primary first, the staged key, then the null key
//! Keystone always appends), the token padded as `cryptography` writes it, and
//! `key_hash` = hex SHA-1 of the primary key's base64 text. A repository Keystone set
//! up, and the rows it encrypted, work here unchanged, and the other way round.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::token::codec::urlsafe_b64decode_lenient;
use crate::token::keys::KeyRepository;

/// `fernet_utils.NULL_KEY`: what Keystone encrypts with before `credential_setup`.
pub const NULL_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Keystone's message when a blob does not decrypt with any key.
const UNDECRYPTABLE: &str = "Credential could not be decrypted. Please contact the administrator";

/// One loaded key: its text (hashed into `key_hash`) and the cipher.
pub struct CredentialKey {
    pub text: String,
    fernet: fernet::Fernet,
}

impl CredentialKey {
    fn new(text: String) -> Result<Self> {
        let fernet = fernet::Fernet::new(&text)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("invalid credential key")))?;
        Ok(CredentialKey { text, fernet })
    }

    /// `primary_key_hash`: hex SHA-1 of the key's text.
    pub fn hash(&self) -> String {
        key_hash(&self.text)
    }
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(..)")
    }
}

pub fn key_hash(text: &str) -> String {
    hex::encode(Sha1::digest(text.as_bytes()))
}

/// The credential key repository (`[credential] key_repository`).
#[derive(Clone, Debug)]
pub struct CredentialKeys {
    repo: KeyRepository,
}

impl CredentialKeys {
    pub fn new(dir: impl AsRef<Path>, max_active_keys: usize) -> Self {
        CredentialKeys {
            repo: KeyRepository::new(dir.as_ref(), max_active_keys),
        }
    }

    pub fn repository(&self) -> &KeyRepository {
        &self.repo
    }

    /// `load_keys(use_null_key=True)`: primary first, staged `0` last, then the null
    /// key; only the null key while the repository is missing or empty.
    pub fn load(&self) -> Result<Vec<CredentialKey>> {
        let mut keys = Vec::new();
        if self.repo.dir().is_dir() {
            let texts = self.repo.read_keys();
            match texts {
                Ok(texts) => {
                    for t in texts.into_iter().rev() {
                        keys.push(CredentialKey::new(t.key)?);
                    }
                }
                Err(crate::token::keys::KeyError::Empty { .. }) => {}
                Err(e) => return Err(Error::internal(e)),
            }
        }
        keys.push(CredentialKey::new(NULL_KEY.to_string())?);
        Ok(keys)
    }

    /// Encrypts with the primary key: (token, key_hash).
    pub fn encrypt(&self, plaintext: &str) -> Result<(String, String)> {
        let keys = self.load()?;
        let primary = &keys[0];
        if primary.text == NULL_KEY {
            tracing::warn!(
                "Encrypting credentials with the null key. Please properly encrypt credentials using `keystone-rs credential setup`, `keystone-rs credential migrate`, and `keystone-rs credential rotate`"
            );
        }
        Ok((primary.fernet.encrypt(plaintext.as_bytes()), primary.hash()))
    }

    /// `MultiFernet.decrypt` with no TTL, trying every key.
    pub fn decrypt(&self, token: &str) -> Result<String> {
        decrypt_with(&self.load()?, token)
    }
}

/// Decrypts `token` with the first key that verifies it.
pub fn decrypt_with(keys: &[CredentialKey], token: &str) -> Result<String> {
    let fail = || {
        tracing::error!("{UNDECRYPTABLE}");
        Error::internal(anyhow::anyhow!(UNDECRYPTABLE))
    };
    let raw = urlsafe_b64decode_lenient(token.trim().as_bytes()).ok_or_else(fail)?;
    if raw.len() < 9 || raw[0] != 0x80 {
        return Err(fail());
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&raw[1..9]);
    let timestamp = u64::from_be_bytes(ts);
    let canonical = URL_SAFE.encode(&raw);
    // No TTL: the crate's only remaining check is `now + 60 < timestamp`.
    let current = timestamp.saturating_sub(60);
    for key in keys {
        if let Ok(plain) = key.fernet.decrypt_at_time(&canonical, None, current) {
            return String::from_utf8(plain).map_err(|_| fail());
        }
    }
    Err(fail())
}

/// Python's `json.dumps` of a string (`ensure_ascii=True`).
pub fn py_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps` (default separators, `ensure_ascii=True`).
pub fn py_json_dumps(v: &serde_json::Value) -> String {
    let mut out = String::new();
    dump(v, &mut out);
    out
}

fn dump(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => py_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_json_string(k, out);
                out.push_str(": ");
                dump(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_strings() {
        let mut s = String::new();
        py_json_string("{\"a\": \"é\u{1F600}\n\"}", &mut s);
        assert_eq!(s, r#""{\"a\": \"\u00e9\ud83d\ude00\n\"}""#);
        assert_eq!(
            py_json_dumps(&serde_json::json!({"access": "x", "n": [1, true]})),
            r#"{"access": "x", "n": [1, true]}"#
        );
    }

    #[test]
    fn null_key_before_setup_and_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = CredentialKeys::new(dir.path().join("missing"), 3);
        let (token, hash) = keys.encrypt("secret").expect("encrypt");
        assert_eq!(hash, key_hash(NULL_KEY));
        assert_eq!(keys.decrypt(&token).expect("decrypt"), "secret");
        assert!(token.ends_with('=') || token.len() % 4 == 0);
    }

    #[test]
    fn after_setup_primary_encrypts_and_null_key_rows_still_decrypt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = CredentialKeys::new(dir.path(), 3);
        let (old, old_hash) = keys.encrypt("before").expect("encrypt");
        keys.repository().setup().expect("setup");
        let (token, hash) = keys.encrypt("after").expect("encrypt");
        assert_ne!(hash, old_hash);
        let loaded = keys.load().expect("load");
        assert_eq!(loaded.len(), 3);
        assert_eq!(hash, loaded[0].hash());
        assert_eq!(keys.decrypt(&old).expect("decrypt"), "before");
        assert_eq!(keys.decrypt(&token).expect("decrypt"), "after");
        assert!(keys.decrypt("garbage").is_err());
    }

    #[test]
    fn decrypts_what_python_keystone_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("0"),
            "x1bZ1uXeBG6MW-tG0ue0N4wSQ62YTqI9Jl7OTwWgfvw=",
        )
        .expect("key");
        let keys = CredentialKeys::new(dir.path(), 3);
        let loaded = keys.load().expect("load");
        assert_eq!(loaded[0].hash(), "b4f1cfcf738d040af54e9b1abea08b520c542ad2");
        assert_eq!(
            key_hash(NULL_KEY),
            "c5bdc272b97a0d521ef878dc26fb73e4075544dc"
        );
        let token = "gAAAAABrFbvsj2m8N7eh0UU2IZ456GeXZ7kQxkx-dcWhZPja03jUxaO8Q102detJk3ovXndl-xibKG0WrokBx07kv0663kWlU7QDwObWI7iEsKwEMu6vXeTxGVcjhMSZlMsjcpQLuNqj";
        let plain = keys.decrypt(token).expect("decrypt");
        let mut expected = String::new();
        py_json_string("{\"access\": \"\u{e9}\", \"secret\": \"s\"}", &mut expected);
        assert_eq!(plain, expected);
    }
}
